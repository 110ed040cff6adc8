// Reload when this scan's analysis finishes (scan.updated over the socket).
window.addEventListener("portal:scan.updated", (event) => {
  const box = document.getElementById("scan");
  const scan = event.detail.scan;
  if (String(scan.id) === box.dataset.scanId && scan.status !== box.dataset.status) window.location.reload();
});
