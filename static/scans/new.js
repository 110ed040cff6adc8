// New Scan: three inputs share the name "image" (front camera, back camera, a saved photo). The one
// chosen last wins: the others are emptied, so that the form never receives two photos. A preview
// lets the caregiver check the framing before sending. A photo kept from an earlier try (the form
// came back with an error) is replaced by a new choice. Sent back with errors, the page puts the
// keyboard and the screen reader on the list of errors at its top.
(function () {
  "use strict";
  const form = document.getElementById("new-scan-form");
  // Only the photo at rest's three inputs: a guided exam's pose inputs keep their own photos.
  const inputs = [...form.querySelectorAll("input[type=file][name=image]")];
  const preview = document.getElementById("photo-preview");
  const held = form.querySelector("input[name=held_photo]");
  const kept = document.getElementById("kept-photo");
  for (const input of inputs) {
    input.addEventListener("change", () => {
      for (const other of inputs) if (other !== input) other.value = "";
      if (preview.src) URL.revokeObjectURL(preview.src);
      const file = input.files[0];
      preview.hidden = !file;
      if (file) {
        preview.src = URL.createObjectURL(file);
        if (held) held.value = "";
        if (kept) kept.hidden = true;
      }
    });
  }
  const errors = document.getElementById("form-errors");
  if (errors) errors.focus();
})();
