// This scan's result appears by itself: the page reloads when the scan's state changes. It learns of
// the change from scan.updated over the socket, and, since an analysis can end before the socket opens
// (or while a phone is off the network), by asking for the scan's state whenever the socket opens or
// reopens, when the tab becomes visible again, and every 20 s while the scan is still being analysed.
// Once the care team claims or resolves the scan's alert, the page reloads to say so.
(function () {
  "use strict";
  const box = document.getElementById("scan");
  if (!box) return;
  const pending = box.dataset.status === "queued" || box.dataset.status === "processing";

  function changed(scan) {
    if (String(scan.id) === box.dataset.scanId && scan.status !== box.dataset.status) window.location.reload();
  }

  async function check() {
    const live = window.portalLive;
    const response = await (live && live.background
      ? live.background("/api/v1/scans/" + box.dataset.scanId + "/")
      : fetch("/api/v1/scans/" + box.dataset.scanId + "/", { credentials: "same-origin" }));
    if (response.ok) changed(await response.json());
  }

  window.addEventListener("portal:scan.updated", (event) => changed(event.detail.scan));
  // The care team claimed or resolved this scan's alert: the page says so (a caregiver learns the outcome).
  // A frame sent while the page was loading or away is missed, so the alert is also asked for whenever
  // the socket opens.
  function alertChanged(alert) {
    if (String(alert.id) === box.dataset.alertId && alert.status !== box.dataset.alertStatus) window.location.reload();
  }
  window.addEventListener("portal:alert.updated", (event) => alertChanged(event.detail.alert));
  if (box.dataset.alertId) {
    window.addEventListener("portal:socket.open", async () => {
      const live = window.portalLive;
      const url = "/api/v1/alerts/?after=" + (Number(box.dataset.alertId) - 1);
      try {
        const response = await (live && live.background ? live.background(url) : fetch(url, { credentials: "same-origin" }));
        if (response.ok) (await response.json()).results.forEach(alertChanged);
      } catch (error) { /* the next open or frame tries again */ }
    });
  }
  if (!pending) return;
  window.addEventListener("portal:socket.open", () => check().catch(() => {}));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) check().catch(() => {}); });
  setInterval(() => check().catch(() => {}), 20000);
})();
