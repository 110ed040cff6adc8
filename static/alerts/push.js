// "Notify this device": subscribes this browser or phone to Web Push, so that alerts that call this
// user (alerts/notify.py) reach it with the portal closed. The service worker is /sw.js.
(function () {
  "use strict";
  const button = document.getElementById("push-subscribe");
  const state = document.getElementById("push-state");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) {
    if (state) state.textContent = "This browser cannot receive notifications with the portal closed.";
    return;
  }
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";

  function key(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function subscribe() {
    button.disabled = true;
    try {
      const registration = await navigator.serviceWorker.register("/sw.js");
      const answer = await fetch("/api/v1/push/subscription/", { credentials: "same-origin" });
      const { public_key: publicKey } = await answer.json();
      const subscription = await registration.pushManager.subscribe(
        { userVisibleOnly: true, applicationServerKey: key(publicKey) });
      const saved = await fetch("/api/v1/push/subscription/", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(subscription.toJSON()),
      });
      state.textContent = saved.ok ? "This device will be notified of alerts that call you."
        : "The portal could not save this device; try again.";
      button.hidden = saved.ok;
    } catch (error) {
      state.textContent = "Notifications were not allowed on this device.";
    } finally {
      button.disabled = false;
    }
  }

  navigator.serviceWorker.getRegistration("/sw.js").then(async (registration) => {
    const existing = registration && await registration.pushManager.getSubscription();
    if (existing) { state.textContent = "This device is notified of alerts that call you."; return; }
    button.hidden = false;
    button.addEventListener("click", subscribe);
  });
})();
