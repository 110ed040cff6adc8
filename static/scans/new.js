// New Scan: three inputs share the name "image" (front camera, back camera, a saved photo). The one
// chosen last wins: the others are emptied, so that the form never receives two photos. A preview
// lets the caregiver check the framing before sending.
(function () {
  "use strict";
  const inputs = [...document.querySelectorAll("#new-scan-form input[type=file]")];
  const preview = document.getElementById("photo-preview");
  for (const input of inputs) {
    input.addEventListener("change", () => {
      for (const other of inputs) if (other !== input) other.value = "";
      if (preview.src) URL.revokeObjectURL(preview.src);
      const file = input.files[0];
      preview.hidden = !file;
      if (file) preview.src = URL.createObjectURL(file);
    });
  }
})();
