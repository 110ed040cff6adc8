// The portal's one clock: a time written by the browser is in the portal's time zone (the page's
// data-time-zone, TIME_ZONE on the server) with the zone's name, "2026-12-03 13:25 UTC", as the server
// writes it (portal/formats/en_GB/formats.py): never in the browser's own zone without saying so.
(function () {
  "use strict";
  const zone = document.body.dataset.timeZone || "UTC";
  let format;
  try {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23", timeZoneName: "short",
    });
  } catch (error) {
    format = null;  // a zone this browser does not know: ISO in UTC, named
  }

  function when(value) {
    const date = value instanceof Date ? value : new Date(value);
    if (!format) return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
    const part = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
    return part.year + "-" + part.month + "-" + part.day + " " + part.hour + ":" + part.minute + " " + part.timeZoneName;
  }

  // "4 min ago", "in 12 min": how long since, or until, a time.
  function relative(value, now) {
    const minutes = Math.round(((value instanceof Date ? value : new Date(value)) - (now || new Date())) / 60000);
    const size = Math.abs(minutes);
    const text = size < 1 ? "under a minute" : size < 90 ? size + " min" : Math.round(size / 60) + " h";
    return minutes <= 0 ? text + " ago" : "in " + text;
  }

  // A span that keeps saying how long ago (or until when) while the page stays open.
  function live(value, className) {
    const span = document.createElement("span");
    span.className = "clock-relative " + (className || "");
    span.dataset.at = value;
    span.textContent = relative(value);
    return span;
  }
  setInterval(() => {
    for (const span of document.querySelectorAll(".clock-relative")) span.textContent = relative(span.dataset.at);
  }, 30000);

  window.portalClock = { zone, when, relative, live };
})();
