// The portal's service worker: shows the Web Push notifications of alerts (alerts/notify.py) while
// no portal page is open, and opens the alert feed when one is clicked. Pushes name no patient.
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (error) { data = {}; }
  const title = data.title || "Facial paralysis screening portal";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "An alert needs a clinician. Sign in to see it.",
    tag: data.tag || "portal-alert",
    renotify: true,
    requireInteraction: Boolean(data.urgent),
    data: { url: data.url || "/alerts/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/alerts/";
  event.waitUntil(self.clients.openWindow(url));
});
