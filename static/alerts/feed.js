// The live alert feed: renders the initial list, then applies alert.created / alert.updated frames.
// Alerts are keyed by id, so a replayed or duplicated frame updates the row instead of doubling it.
// Everything from the server goes in through textContent, never innerHTML.
(function () {
  "use strict";
  const feed = document.getElementById("alert-feed");
  const canAct = feed.dataset.canAct === "1";
  const me = feed.dataset.username;
  const undoSeconds = Number(feed.dataset.undoSeconds || 0);
  const undoTimers = new Map(); // alert id -> the timer that redraws its card once Undo has expired
  const rows = new Map();

  function csrfToken() {
    const match = document.cookie.match(/csrftoken=([^;]+)/);
    return match ? match[1] : "";
  }

  // The triage order of alert_feed_for_user (alerts/selectors.py), which orders the initial list: active
  // stroke-pattern alerts, other active positives, active review items, then resolved ones; newest first
  // within each.
  function rank(alert) {
    if (alert.status === "resolved") return 3;
    return alert.urgent ? 0 : alert.kind === "review" ? 2 : 1;
  }

  function comesBefore(a, b) {
    const [rankA, rankB] = [Number(a.dataset.rank), Number(b.dataset.rank)];
    return rankA !== rankB ? rankA < rankB : Number(a.dataset.alertId) > Number(b.dataset.alertId);
  }

  function line(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  }

  function render(alert) {
    let li = rows.get(alert.id);
    if (!li) {
      li = document.createElement("li");
      li.dataset.alertId = alert.id;
      rows.set(alert.id, li);
    }
    // An update can change the rank (a stroke-pattern scan joins the episode, the alert is resolved), so
    // place it every time.
    li.dataset.rank = rank(alert);
    feed.insertBefore(li, [...feed.children].find((row) => row !== li && comesBefore(li, row)) || null);
    li.className = "alert severity-" + alert.severity + " status-" + alert.status + " kind-" + alert.kind +
      (alert.urgent ? " alert-urgent" : "");
    const img = document.createElement("img");
    img.src = alert.latest_scan.image_url; img.alt = "Latest photo of this alert"; img.loading = "lazy";
    const body = document.createElement("div");
    const title = document.createElement("a");
    title.href = alert.latest_scan.page_url;
    title.textContent = alert.patient.full_name + " (" + alert.patient.mrn + ")";
    const meta = document.createElement("p");
    // The latest photo's time (not the episode's start), in the portal's zone, and how long ago.
    const clock = window.portalClock;
    const photoAt = alert.latest_scan.uploaded_at;
    meta.append("Severity " + alert.severity + " · score " + alert.score.toFixed(2) + " · latest photo " +
      clock.when(photoAt) + " (", clock.live(photoAt, "alert-age"), ")" +
      " · referring physician: " + (alert.referring_physician || "none") +
      (alert.scan_count > 1 ? " · " + alert.scan_count + (alert.kind === "review" ? " scans" : " positive scans") +
        " in this episode, the first " + clock.when(alert.created_at) : ""));
    const deadline = document.createElement("p");
    deadline.className = "alert-deadline";
    if (alert.status === "open" && alert.next_escalation_at) {
      deadline.append("Unclaimed, with the " + alert.escalation_tier + ": the next call goes out at " +
        clock.when(alert.next_escalation_at) + " (", clock.live(alert.next_escalation_at, "alert-due"), ")");
    }
    const status = document.createElement("p");
    status.className = "alert-status";
    status.textContent = alert.status === "open" ? "Open: not yet claimed"
      : alert.status === "acknowledged" ? "Claimed by " + alert.acknowledged_by
      : "Resolved (" + alert.outcome.replace("_", " ") + ") by " + alert.resolved_by;
    // An urgent review item keeps its review label: urgent, and still only inconclusive.
    if (alert.urgent) {
      body.append(line("stroke-badge", window.portalLive.heading(alert)));
    }
    if (alert.kind === "review") body.append(line("review-label", "Review: inconclusive result"));
    if (alert.urgent && alert.advice) body.append(line("stroke-advice", alert.advice));
    // When the person was last seen without this weakness, and how long ago: with the evidence, what
    // makes a flagged face a possible stroke (scans/urgency.py).
    const onset = document.createElement("p");
    onset.className = "alert-onset";
    if (alert.onset_at) {
      onset.append("Last seen without this weakness: " + clock.when(alert.onset_at) + " (", clock.live(alert.onset_at, "onset-age"), ")");
    } else {
      onset.textContent = "Last seen without this weakness: not known (treated as a possible stroke)";
    }
    body.append(title, meta, onset, deadline);
    if (alert.latest_scan.exam_finding) body.append(line("alert-exam", "Guided exam: " + alert.latest_scan.exam_finding));
    if (alert.latest_scan.urgency_reason) body.append(line("alert-urgency", alert.latest_scan.urgency_reason));
    // The caregiver's own words with the photos of this episode.
    for (const scan of alert.latest_scan.id === alert.scan.id ? [alert.scan] : [alert.scan, alert.latest_scan]) {
      if (scan.note) body.append(line("alert-note", "Note with the photo: \u201c" + scan.note + "\u201d"));
    }
    const scan = alert.latest_scan;
    // The card describes its episode: the pattern behind its heading, and the latest photo's only where
    // it differs, said as such.
    if (alert.pattern) {
      const latest = alert.scan_count > 1 && scan.pattern && scan.pattern !== alert.pattern
        ? " (latest photo: " + scan.pattern_display + ")" : "";
      body.append(line("alert-pattern", "Pattern: " + alert.pattern_display + latest));
    }
    // Called again: what changed (a worse photo, a released claim, a move to another team).
    if (alert.status === "open" && alert.call_round > 0 && alert.call_reason) {
      body.append(line("alert-called-again", "Called again: " + alert.call_reason + "."));
    }
    if (scan.quality_warnings && scan.quality_warnings.length) {
      const warnings = document.createElement("ul");
      warnings.className = "alert-warnings";
      for (const warning of scan.quality_warnings) {
        const item = document.createElement("li");
        item.textContent = "Photo: " + warning.message;
        warnings.append(item);
      }
      body.append(warnings);
    }
    body.append(status);
    if (alert.escalation_level > 0 && alert.status === "open") {
      const escalated = document.createElement("p");
      escalated.className = "escalated";
      escalated.textContent = "Not acknowledged in time: escalated to the " + alert.escalation_tier;
      body.append(escalated);
    }
    if (canAct && alert.status === "open") {
      const button = document.createElement("button");
      button.textContent = "Acknowledge";
      button.className = "acknowledge";
      button.onclick = () => act(alert.id, "acknowledge", {});
      body.append(button);
    }
    // One's own resolution can be taken back for a short while (alerts.services.alert_undo_resolve).
    const undoLeft = alert.status === "resolved" && alert.resolved_by === me && alert.resolved_at
      ? undoSeconds * 1000 - (Date.now() - Date.parse(alert.resolved_at)) : 0;
    clearTimeout(undoTimers.get(alert.id));
    if (canAct && undoLeft > 0) {
      const button = document.createElement("button");
      button.textContent = "Undo resolve"; button.className = "secondary undo";
      button.onclick = () => act(alert.id, "undo-resolve", {});
      const until = line("small undo-until", "You can undo this until " +
        clock.when(new Date(Date.now() + undoLeft).toISOString()) + ".");
      body.append(button, until);
      undoTimers.set(alert.id, setTimeout(() => render(alert), undoLeft + 50));
    }
    if (canAct && alert.status !== "resolved") {
      if (drafts.has(alert.id)) {
        body.append(resolveForm(alert));
      } else {
        const button = document.createElement("button");
        button.textContent = "Resolve…"; button.className = "secondary resolve";
        button.onclick = () => { drafts.set(alert.id, { outcome: "", note: "" }); render(alert); focusDraft(alert.id); };
        body.append(button);
      }
    }
    // A frame redraws the card while someone may be typing in it: keep the focus and the caret.
    const active = li.contains(document.activeElement) ? document.activeElement : null;
    const keep = active && { name: active.name, value: active.type === "radio" ? active.value : null,
      caret: active.selectionStart, cls: active.className };
    li.replaceChildren(img, body);
    if (keep) {
      const again = [...li.querySelectorAll("input, textarea, button")].find((el) =>
        keep.name ? el.name === keep.name && (keep.value === null || el.value === keep.value) : el.className === keep.cls);
      if (again) {
        again.focus();
        if (typeof keep.caret === "number" && again.setSelectionRange) again.setSelectionRange(keep.caret, keep.caret);
      } else {
        // The focused control went with the redraw (a frame claimed the alert before the click's own
        // answer came): keep the keyboard in the card, on what comes next.
        nextControl(li).focus();
      }
    }
    document.getElementById("no-alerts").hidden = rows.size > 0;
  }

  // Resolving is a decision about a possible stroke: it is confirmed in a form of its own, with the
  // outcome chosen and, for a false alarm, a note of why; it survives the card being redrawn by a frame.
  const drafts = new Map(); // alert id -> {outcome, note}
  const OUTCOMES = [["confirmed", "Confirmed: facial weakness seen"], ["referred", "Referred on"], ["false_alarm", "False alarm"]];

  function resolveForm(alert) {
    const draft = drafts.get(alert.id);
    const form = document.createElement("form");
    form.className = "resolve-form";
    const legend = document.createElement("p");
    legend.className = "resolve-title";
    legend.textContent = "Resolve this alert for " + alert.patient.full_name + ": the care team stops being called.";
    form.append(legend);
    for (const [value, label] of OUTCOMES) {
      const option = document.createElement("label");
      option.className = "choice";
      const radio = document.createElement("input");
      radio.type = "radio"; radio.name = "outcome-" + alert.id; radio.value = value;
      radio.checked = draft.outcome === value;
      radio.onchange = () => { draft.outcome = value; update(); };
      option.append(radio, " " + label);
      form.append(option);
    }
    const noteLabel = document.createElement("label");
    noteLabel.textContent = "Note (what was found; needed for a false alarm)";
    const note = document.createElement("textarea");
    note.name = "note"; note.maxLength = 500; note.rows = 2; note.value = draft.note;
    note.oninput = () => { draft.note = note.value; update(); };
    noteLabel.append(note);
    const submit = document.createElement("button");
    submit.type = "submit"; submit.textContent = "Resolve"; submit.className = "confirm-resolve";
    const cancel = document.createElement("button");
    cancel.type = "button"; cancel.textContent = "Cancel"; cancel.className = "secondary";
    cancel.onclick = () => { drafts.delete(alert.id); render(alert); };
    form.append(noteLabel, submit, cancel);
    function update() {
      submit.disabled = !draft.outcome || (draft.outcome === "false_alarm" && !draft.note.trim());
    }
    update();
    form.onsubmit = (event) => {
      event.preventDefault();
      act(alert.id, "resolve", { outcome: draft.outcome, note: draft.note.trim() }).then((ok) => {
        if (ok) drafts.delete(alert.id);
      });
    };
    return form;
  }

  function nextControl(card) {
    return card.querySelector("button.undo, button.resolve, button.acknowledge") || card.querySelector("a");
  }

  function focusDraft(id) {
    const row = rows.get(id);
    const first = row && row.querySelector(".resolve-form input");
    if (first) first.focus();
  }

  async function act(id, action, body) {
    const response = await fetch("/api/v1/alerts/" + id + "/" + action + "/", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (response.ok) {
      drafts.delete(id);
      render(data);
      // The button pressed is gone with the redraw: keep the keyboard in the card, on what comes next.
      const card = rows.get(id);
      if (card) nextControl(card).focus();
    } else {
      window.alert(data.detail || "That did not work.");
    }
    return response.ok;
  }

  JSON.parse(document.getElementById("initial-alerts").textContent).forEach(render);
  document.getElementById("no-alerts").hidden = rows.size > 0;
  window.addEventListener("portal:alert.created", (e) => render(e.detail.alert));
  window.addEventListener("portal:alert.updated", (e) => render(e.detail.alert));
  window.addEventListener("portal:alert.escalated", (e) => render(e.detail.alert));
  window.addEventListener("portal:alert.repeated", (e) => render(e.detail.alert));
  if ("Notification" in window && Notification.permission === "default") {
    document.addEventListener("click", () => Notification.requestPermission(), { once: true });
  }
})();
