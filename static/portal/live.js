// One WebSocket per page to /ws/alerts/. Frames become window events ("portal:alert.created",
// "portal:alert.updated", "portal:scan.updated"). On reconnect it asks for every change after the last
// one it saw (after_event), so nothing raised, claimed or resolved while it was down is missed.
(function () {
  "use strict";
  // lastEventId: the latest change seen to any alert; a reconnect asks for every change since.
  const state = { lastAlertId: 0, lastEventId: 0, openCount: 0, socket: null, retry: 0 };
  window.portalLive = state;

  function setConnection(text, ok) {
    const el = document.getElementById("connection");
    if (el) { el.textContent = text; el.classList.toggle("ok", ok); }
  }

  function updateBadge() {
    const badge = document.getElementById("open-alert-badge");
    if (badge) { badge.textContent = state.openCount; badge.hidden = state.openCount === 0; }
    const base = document.title.replace(/^\(\d+\) /, "");
    document.title = state.openCount > 0 ? "(" + state.openCount + ") " + base : base;
  }

  // The page's own requests: marked as background, so they do not keep an idle session alive (the
  // server signs a ward computer out after SESSION_IDLE_MINUTES without anyone using it). Once the
  // session has ended, go to the login page, which says why, instead of showing a stale feed.
  async function background(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "X-Portal-Background": "1" } });
    if (response.status === 401 || response.status === 403) {
      location.assign("/login/?signed_out=1&next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("signed out");
    }
    return response;
  }

  async function refreshCounts() {
    const [open, latest] = await Promise.all([
      background("/api/v1/alerts/?status=open").then((r) => r.json()),
      background("/api/v1/alerts/").then((r) => r.json()),
    ]);
    state.openCount = open.count;
    if (latest.results.length) state.lastAlertId = Math.max(state.lastAlertId, latest.results[0].id);
    for (const alert of latest.results) state.lastEventId = Math.max(state.lastEventId, alert.last_event_id || 0);
    updateBadge();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const replay = state.lastEventId > 0 ? "after_event=" + state.lastEventId : "after=" + state.lastAlertId;
    const socket = new WebSocket(scheme + "://" + location.host + "/ws/alerts/?" + replay);
    state.socket = socket;
    socket.onopen = () => { state.retry = 0; setConnection("live", true); };
    socket.onclose = () => {
      setConnection("reconnecting…", false);
      refreshCounts().catch(() => {});  // a socket closed because the session ended: to the login page
      state.retry = Math.min(state.retry + 1, 6);
      // Jittered: when a web node goes away, its dashboards do not all knock on the next one at once.
      setTimeout(connect, 500 * 2 ** state.retry * (0.5 + Math.random()));
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.alert) {
        const isNew = frame.alert.id > state.lastAlertId;
        state.lastAlertId = Math.max(state.lastAlertId, frame.alert.id);
        state.lastEventId = Math.max(state.lastEventId, frame.alert.last_event_id || 0);
        if (frame.type === "alert.created" && isNew && frame.alert.status === "open") state.openCount += 1;
        if (frame.type !== "alert.created") refreshCounts().catch(() => {});
        updateBadge();
        if (frame.type === "alert.created" && isNew && !frame.replayed) notify(frame.alert, "");
        if (frame.type === "alert.escalated") notify(frame.alert, "Escalated to the " + frame.alert.escalation_tier + ". ");
        // Another positive photo of the patient: heard again even when the alert is already claimed.
        if (frame.type === "alert.repeated") {
          notify(frame.alert, frame.reopened ? "A worse photo re-opened this alert. " : "Another positive photo. ");
        }
      }
      window.dispatchEvent(new CustomEvent("portal:" + frame.type, { detail: frame }));
    };
  }

  function notify(alert, prefix) {
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    // Only what this user may see anyway: the alert payload is already scoped to them.
    const advice = alert.urgent ? alert.advice + " " : alert.kind === "review" ? "Inconclusive result to review. " : "";
    const what = alert.urgent ? (alert.pattern === "central" ? "STROKE PATTERN: " : "POSSIBLE STROKE: ") : "Facial paralysis alert: ";
    new Notification(what + alert.patient.full_name,
      { body: prefix + advice + "Severity " + alert.severity + ". " + alert.disclaimer,
        tag: "alert-" + alert.id, renotify: true });
  }

  function beep() {
    // A short tone; browsers allow it once the user has interacted with the page.
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (error) { /* no audio: the visual feed still updates */ }
  }

  // Safety net: the socket only tells clients to look, and a frame can be dropped under load. Every
  // 15 s (and when the tab becomes visible) ask the record for anything after the last alert seen.
  async function catchUp() {
    const response = await background("/api/v1/alerts/?after=" + state.lastAlertId);
    if (!response.ok) return;
    const page = await response.json();
    for (const alert of page.results) {
      if (alert.id <= state.lastAlertId) continue;
      state.lastAlertId = alert.id;
      if (alert.status === "open") state.openCount += 1;
      window.dispatchEvent(new CustomEvent("portal:alert.created",
        { detail: { type: "alert.created", alert: alert, replayed: true } }));
    }
    updateBadge();
  }
  setInterval(() => catchUp().catch(() => {}), 15000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) catchUp().catch(() => {}); });

  state.send = (frame) => state.socket && state.socket.readyState === 1 && state.socket.send(JSON.stringify(frame));
  const feed = document.getElementById("alert-feed");
  if (feed) state.lastAlertId = Number(feed.dataset.lastId || 0);
  refreshCounts().catch(() => {}).finally(connect);
})();
