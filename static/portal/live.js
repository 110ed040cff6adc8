// One WebSocket per page to /ws/alerts/. Frames become window events ("portal:alert.created",
// "portal:alert.updated", "portal:scan.updated"). On reconnect it asks for every change after the last
// one it received (after_event), so nothing raised, claimed or resolved while it was down is missed.
//
// The cursor (lastEventId, lastAlertId) starts where the server rendered the page (the script tag's
// data-event / data-alert, read before the page's own list) and moves only with what this page has
// actually received: frames, replays and catch-ups. Never from a count or a list fetched meanwhile:
// that skipped whatever was raised between the socket closing and the fetch.
(function () {
  "use strict";
  const script = document.currentScript;
  const start = { event: Number(script.dataset.event || 0), alert: Number(script.dataset.alert || 0) };
  const state = {
    lastEventId: start.event, // the latest change received; a reconnect asks for every change since
    lastAlertId: start.alert, // the newest alert received
    // The catch-up asks for changes after `checkpoint`, which trails the cursor by one round, so that a
    // frame dropped between two received ones (or a change committed late) is still fetched.
    checkpoint: start.event, nextCheckpoint: start.event,
    openCount: 0, socket: null, retry: 0,
    sounded: [], // what this page sounded, in order (one key per raise, escalation, repeat): for tests
  };
  window.portalLive = state;
  // Set once this page is being left (Log out sent, or another page opened): the socket's close that
  // follows is not a session that ended by itself.
  let leaving = false;
  document.addEventListener("submit", (event) => { if (event.target.id === "logout-form") leaving = true; }, true);
  window.addEventListener("pagehide", () => { leaving = true; });
  const heard = new Set();
  const seen = new Map(); // alert id -> {level, scans} as last received

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
    if (leaving) throw new Error("leaving the page");  // a logout or another page: not "signed out"
    if (response.status === 401 || response.status === 403) {
      location.assign("/login/?signed_out=1&next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("signed out");
    }
    return response;
  }

  // An unused screen signs out at a time it says in advance: the server ends the session
  // SESSION_IDLE_MINUTES after someone last used the screen (or at the end of a shift). Clicks and key
  // presses on the page count as use (told to the server at most once a minute); for the last
  // SESSION_WARNING_MS a notice gives the time and a button to stay; at that time the page goes to the
  // login page, which says why and how many alerts were open on this screen.
  const SESSION_WARNING_MS = 2 * 60 * 1000;
  let sessionEnds = Date.parse(document.body.dataset.sessionEnds || "") || null;
  let sessionReason = "idle";
  let lastUse = 0;
  const warning = document.getElementById("session-warning");

  async function sessionState(inUse) {
    const response = inUse
      ? await fetch("/session/", { credentials: "same-origin" })
      : await background("/session/");
    if (response.ok) {
      const data = await response.json();
      sessionEnds = Date.parse(data.ends_at);
      sessionReason = data.reason;
      checkSession();
    }
  }

  function used() {
    if (leaving || Date.now() - lastUse < 60000) return;
    lastUse = Date.now();
    sessionState(true).catch(() => {});
  }

  function checkSession() {
    if (!sessionEnds || leaving || !warning) return;
    const left = sessionEnds - Date.now();
    if (left <= 0) {
      leaving = true;
      const at = new Date(sessionEnds).toISOString();
      location.assign("/login/?signed_out=1&why=" + sessionReason + "&at=" + encodeURIComponent(at) +
        "&open=" + (state.openCount || 0) + "&next=" + encodeURIComponent(location.pathname + location.search));
      return;
    }
    const show = left <= SESSION_WARNING_MS;
    if (show) {
      const clock = window.portalClock;
      const minutes = Math.max(1, Math.ceil(left / 60000));
      document.getElementById("session-warning-text").textContent = (sessionReason === "shift"
        ? "This session reaches its limit of a shift: it signs out at "
        : "Nobody has used this screen for a while: it signs out at ") + clock.when(new Date(sessionEnds).toISOString()) +
        " (in " + (minutes === 1 ? "under a minute" : minutes + " minutes") + ")" +
        (state.openCount ? ", with " + state.openCount + (state.openCount === 1 ? " open alert" : " open alerts") + " on it" : "") + ".";
    }
    if (warning.hidden === show) warning.hidden = !show;
    document.getElementById("stay-signed-in").hidden = sessionReason === "shift";
  }

  state.refreshSession = () => sessionState(false);
  if (warning) {
    // At the click, not at pointerdown: the notice above the page hides when the use is recorded, and
    // hiding it between a press and its release would lose the click (as the sound control did).
    for (const gesture of ["click", "keydown"]) document.addEventListener(gesture, used, { capture: true });
    document.getElementById("stay-signed-in").addEventListener("click", () => { lastUse = 0; used(); });
    setInterval(checkSession, 1000);
    // Another tab or device of the same session may have been used meanwhile: ask now and then.
    setInterval(() => { if (sessionEnds && sessionEnds - Date.now() <= SESSION_WARNING_MS + 60000) sessionState(false).catch(() => {}); }, 30000);
  }

  // The open count only: it moves no cursor.
  async function refreshCounts() {
    const open = await background("/api/v1/alerts/?status=open").then((r) => r.json());
    state.openCount = open.count;
    updateBadge();
  }

  // A burst of frames asks for the count once.
  let counting = null;
  function countSoon() {
    if (counting) return;
    counting = setTimeout(() => { counting = null; refreshCounts().catch(() => {}); }, 1000);
  }

  // Every page of a REST list of alerts (after=, after_event=).
  async function fetchAll(url) {
    const alerts = [];
    for (let next = url, pages = 0; next && pages < 40; pages += 1) {
      const response = await background(next);
      if (!response.ok) break;
      const page = await response.json();
      alerts.push(...page.results);
      next = page.next;
    }
    return alerts;
  }

  // An alert this page received, by whatever path: move the cursor, sound what is new to this page
  // (once each: a raise, every call made of it, another positive photo), hand it to the page.
  // Each call is named by the event that made it due (alert.latest_call: an escalation, a repeat of the
  // triage desk, a round that calls everyone again after a worse photo, a released claim or a move to
  // another team): one this page has not heard, made after it was rendered, sounds as a raise does.
  function received(type, alert, frame) {
    state.lastAlertId = Math.max(state.lastAlertId, alert.id);
    state.lastEventId = Math.max(state.lastEventId, alert.last_event_id || 0);
    const before = seen.get(alert.id);
    const now = { scans: alert.scan_count };
    seen.set(alert.id, now);
    const raisedKey = "raised:" + alert.id;
    const call = alert.latest_call;
    const callKey = call ? "call:" + alert.id + ":" + call.event_id : raisedKey;
    const repeatedKey = "repeated:" + alert.id + ":" + now.scans;
    const positivePhoto = alert.latest_scan && alert.latest_scan.label === "paralysis";
    if (alert.id > start.alert && !heard.has(raisedKey)) {
      // Raised since the page was rendered: one sound, whatever happened to it meanwhile.
      [raisedKey, callKey, repeatedKey].forEach((key) => heard.add(key));
      if (alert.status !== "resolved") sound(raisedKey, alert, call && call.words ? call.words + " " : "");
    } else if (alert.status === "open" && call && call.event_id > start.event && !heard.has(callKey)) {
      heard.add(callKey);
      heard.add(repeatedKey);
      sound(callKey, alert, call.words ? call.words + " " : "");
    } else if (now.scans > 1 && alert.status !== "resolved" && !heard.has(repeatedKey) && positivePhoto &&
               (type === "alert.repeated" || (before && before.scans < now.scans))) {
      // Another positive photo of the patient: heard again even when the alert is already claimed.
      heard.add(repeatedKey);
      sound(repeatedKey, alert, frame && frame.reopened ? "A worse photo re-opened this alert. " : "Another positive photo. ");
    }
    window.dispatchEvent(new CustomEvent("portal:" + type, { detail: frame || { type, alert, replayed: true } }));
  }

  // How an alert is headed: the server's words (Alert.heading, from the strongest evidence of its
  // episode: an inconclusive photo is never called the stroke pattern). The feed's cards use it too.
  function heading(alert) {
    return alert.heading || (alert.kind === "review" ? "Review" : "Facial paralysis alert");
  }
  state.heading = heading;

  function sound(key, alert, prefix) {
    state.sounded.push(key);
    notify(alert, prefix);
    announce(alert, prefix);
  }

  // What a screen reader says: the same words as the notification, into the page's live region.
  function announce(alert, prefix) {
    const region = document.getElementById("alert-announcer");
    if (!region) return;
    region.textContent = prefix + heading(alert) + ": " + alert.patient.full_name + ", severity " + alert.severity + ".";
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const replay = state.lastEventId > 0 ? "after_event=" + state.lastEventId : "after=" + state.lastAlertId;
    const socket = new WebSocket(scheme + "://" + location.host + "/ws/alerts/?" + replay);
    state.socket = socket;
    socket.onopen = () => {
      state.retry = 0;
      setConnection("live", true);
      // Whatever changed while no socket listened was announced to nobody: pages that show a state
      // (a scan being analysed) fetch it now, at the first open and after every reconnect.
      window.dispatchEvent(new CustomEvent("portal:socket.open"));
    };
    socket.onclose = () => {
      if (leaving) return;
      setConnection("reconnecting…", false);
      refreshCounts().catch(() => {});  // a socket closed because the session ended: to the login page
      state.retry = Math.min(state.retry + 1, 6);
      // Jittered: when a web node goes away, its dashboards do not all knock on the next one at once.
      setTimeout(connect, 500 * 2 ** state.retry * (0.5 + Math.random()));
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.alert) {
        received(frame.type, frame.alert, frame);
        countSoon();
        return;
      }
      if (frame.type === "replay.cut") {
        // More changed than one replay carries: the newest came; the rest is in the REST list.
        fetchAll(frame.rest).then((alerts) => alerts.forEach((alert) => received("alert.updated", alert))).catch(() => {});
      }
      window.dispatchEvent(new CustomEvent("portal:" + frame.type, { detail: frame }));
    };
  }

  function notify(alert, prefix) {
    beep(true);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    // Only what this user may see anyway: the alert payload is already scoped to them.
    const advice = (alert.kind === "review" ? "Inconclusive result to review. " : "") + (alert.urgent ? alert.advice + " " : "");
    new Notification(heading(alert) + ": " + alert.patient.full_name,
      { body: prefix + advice + "Severity " + alert.severity + ". " + alert.disclaimer,
        tag: "alert-" + alert.id, renotify: true });
  }

  // One audio context for the page. Browsers start it suspended until the page is clicked or typed
  // in (their autoplay policy): until then an alert would be silent, so the sound control says so and
  // turns the sound on (and asks for pop-up notifications) with one click; any click on the page
  // turns the sound on too.
  let audio = null;
  try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (error) { audio = null; }
  const soundControl = document.getElementById("sound-control");
  state.missedSounds = 0;

  function showSoundState() {
    if (!soundControl) return;
    const silent = !audio || audio.state !== "running";
    soundControl.hidden = !silent;
    soundControl.classList.toggle("missed", silent && state.missedSounds > 0);
    document.getElementById("sound-state").textContent = !audio
      ? "This browser cannot play the alert sound: keep the feed in view."
      : state.missedSounds > 0
        ? state.missedSounds + (state.missedSounds === 1 ? " alert" : " alerts") +
          " arrived without sound: the browser keeps this page silent until it is clicked. Turn the sound on so the next one is heard."
        : "Alert sound is off on this screen: the browser keeps a page silent until it is clicked.";
  }

  function soundOn() {
    if (!audio) return Promise.resolve();
    return audio.resume().then(showSoundState, showSoundState);
  }

  if (soundControl) {
    document.getElementById("sound-on").addEventListener("click", () => {
      soundOn().then(() => beep(false));
      if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().catch(() => {});
    });
    if (audio) audio.addEventListener("statechange", showSoundState);
    showSoundState();
  }
  // On a click, not at pointerdown: the control above the page hides once the sound is on, and hiding it
  // between a press and its release moved what was pressed from under the pointer, so the page's first
  // click (Acknowledge, Resolve...) was lost. The sound control's own click turns the sound on itself.
  for (const gesture of ["click", "keydown"]) {
    document.addEventListener(gesture, (event) => {
      if (soundControl && soundControl.contains(event.target)) return;
      if (audio && audio.state !== "running") soundOn();
    }, { capture: true });
  }

  function beep(forAlert) {
    // A short tone, or, while the browser keeps the page silent, a count of the alerts not heard.
    if (!audio || audio.state !== "running") {
      if (forAlert) { state.missedSounds += 1; showSoundState(); }
      return;
    }
    try {
      const tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (error) { /* no audio: the visual feed still updates */ }
  }

  // Safety net: the socket only tells clients to look, and a frame can be dropped under load. Every
  // 15 s (and when the tab becomes visible) ask the record for alerts raised after the newest received
  // and for every change after the checkpoint (a claim, an escalation, a stroke-pattern photo joining),
  // so the feed is re-sorted even while the socket stays up.
  async function catchUp() {
    const [raised, changed] = await Promise.all([
      fetchAll("/api/v1/alerts/?after=" + state.lastAlertId),
      fetchAll("/api/v1/alerts/?after_event=" + state.checkpoint),
    ]);
    const byId = new Map([...raised, ...changed].map((alert) => [alert.id, alert]));
    for (const alert of byId.values()) received(alert.id > start.alert ? "alert.created" : "alert.updated", alert);
    state.checkpoint = state.nextCheckpoint;
    state.nextCheckpoint = state.lastEventId;
    if (byId.size) countSoon();
  }
  setInterval(() => catchUp().catch(() => {}), 15000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) catchUp().catch(() => {}); });

  state.background = background;
  state.send = (frame) => state.socket && state.socket.readyState === 1 && state.socket.send(JSON.stringify(frame));
  // The feed page's own list: what this page already shows, as received (not sounded again).
  const initial = document.getElementById("initial-alerts");
  if (initial) {
    for (const alert of JSON.parse(initial.textContent)) {
      seen.set(alert.id, { scans: alert.scan_count });
      heard.add("raised:" + alert.id);
      if (alert.latest_call) heard.add("call:" + alert.id + ":" + alert.latest_call.event_id);
    }
  }
  refreshCounts().catch(() => {});
  connect();
})();
