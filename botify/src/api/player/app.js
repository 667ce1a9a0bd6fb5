// botify's web player. Plain JavaScript, no dependencies: the page talks to
// the public API like any client (docs/api.md). Playback is simulated: a bar
// runs for a few seconds per track, and what the listener does with it
// becomes the listened fraction sent to /next (Skip: the fraction heard so
// far; the end of the bar: 1.0) or to /last (Stop).
"use strict";

const $ = (id) => document.getElementById(id);
const TICK_MS = 100;

const state = {
  picked: null, // the first track's catalog record
  user: null, // the session's user id, as typed
  current: null, // {record, elapsedMs, playing, lastTick, done}
  reported: 0, // sum of the fractions sent this session
  timer: null,
  tracks: new Map(), // catalog records by id
  inSession: false,
};

class ApiFailure extends Error {}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// Calls the API; a 4xx shows the server's own error code and message.
async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    showError(`cannot reach botify: ${err.message}`);
    throw new ApiFailure(err.message);
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const text = answer && answer.message
      ? `${answer.error}: ${answer.message}`
      : `${method} ${path} answered ${response.status}`;
    showError(text);
    throw new ApiFailure(text);
  }
  return answer;
}

async function trackRecord(id) {
  if (!state.tracks.has(id)) {
    state.tracks.set(id, await api("GET", `/track/${id}`));
  }
  return state.tracks.get(id);
}

function describe(record) {
  return `${record.artist} · ${record.genre ?? "no genre"}`;
}

function fillList(list, records, empty) {
  list.replaceChildren();
  if (records.length === 0) {
    const item = document.createElement("li");
    item.className = "empty";
    item.textContent = empty;
    list.append(item);
    return;
  }
  for (const record of records) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.track = record.track;
    button.innerHTML = "<span class=\"title\"></span><span class=\"meta\"></span>";
    button.querySelector(".title").textContent = record.title;
    button.querySelector(".meta").textContent = describe(record);
    button.title = state.inSession ? "" : "Pick as the first track";
    button.addEventListener("click", () => pick(record));
    item.append(button);
    list.append(item);
  }
}

function pick(record) {
  if (state.inSession) return;
  state.picked = record;
  $("picked").textContent = `${record.title} — ${describe(record)}`;
  $("picked").dataset.track = record.track;
  $("start").disabled = false;
}

async function search(event) {
  event.preventDefault();
  clearError();
  const q = $("query").value;
  try {
    const answer = await api("GET", `/tracks?q=${encodeURIComponent(q)}&k=10`);
    answer.tracks.forEach((t) => state.tracks.set(t.track, t));
    fillList($("results"), answer.tracks, `no track matches "${q}"`);
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
  }
}

async function showTop(event) {
  event.preventDefault();
  clearError();
  const genre = $("genre").value.trim();
  const query = genre ? `?genre=${encodeURIComponent(genre)}&k=10` : "?k=10";
  try {
    const answer = await api("GET", `/top${query}`);
    const records = await Promise.all(answer.tracks.map(trackRecord));
    fillList($("top-list"), records, "no tracks");
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
  }
}

async function showSimilar(record) {
  $("similar-to").textContent = record.title;
  try {
    const answer = await api("GET", `/similar/${record.track}?k=5`);
    const records = await Promise.all(answer.similar.map(trackRecord));
    fillList($("similar-list"), records, "no similar tracks");
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
  }
}

function durationMs() {
  const seconds = Number($("seconds").value);
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : 10) * 1000;
}

function gapMs() {
  const seconds = Number($("gap").value);
  return (Number.isFinite(seconds) && seconds >= 0 ? seconds : 2) * 1000;
}

// The fraction heard so far, rounded to hundredths as it is shown and sent.
function heard() {
  const current = state.current;
  if (!current) return 0;
  return Math.min(1, Math.round((current.elapsedMs / current.durationMs) * 100) / 100);
}

function setButtons(enabled) {
  for (const id of ["pause", "skip", "stop"]) $(id).disabled = !enabled;
}

function render() {
  const current = state.current;
  if (!current) return;
  const fraction = heard();
  $("bar-fill").style.width = `${(Math.min(1, current.elapsedMs / current.durationMs) * 100).toFixed(1)}%`;
  $("bar").setAttribute("aria-valuenow", Math.round(fraction * 100));
  $("heard").textContent = fraction.toFixed(2);
  $("clock").textContent = `${(current.elapsedMs / 1000).toFixed(1)} s of ${(current.durationMs / 1000).toFixed(1)} s`;
  const live = current.done ? 0 : fraction;
  $("listen-time").textContent = (state.reported + live).toFixed(2);
}

function tick() {
  const current = state.current;
  if (!current || !current.playing) return;
  const now = performance.now();
  current.elapsedMs += now - current.lastTick;
  current.lastTick = now;
  if (current.elapsedMs >= current.durationMs) {
    current.elapsedMs = current.durationMs;
    render();
    finish(1, "played to the end");
    return;
  }
  render();
}

function play(record) {
  state.current = {
    record,
    elapsedMs: 0,
    durationMs: durationMs(),
    playing: true,
    lastTick: performance.now(),
    done: false,
  };
  $("now-title").textContent = record.title;
  $("now-title").dataset.track = record.track;
  $("now-meta").textContent = describe(record);
  $("now-state").textContent = "playing";
  $("pause").textContent = "Pause";
  $("next-title").textContent = "chosen when this track ends";
  $("next-title").dataset.track = "";
  $("next-meta").textContent = "botify learns from how much of it you hear";
  setButtons(true);
  render();
  clearInterval(state.timer);
  state.timer = setInterval(tick, TICK_MS);
  showSimilar(record);
}

// Ends the current track: counts it, logs it in the history list.
function endTrack(time, how) {
  const current = state.current;
  clearInterval(state.timer);
  current.playing = false;
  current.done = true;
  setButtons(false);
  state.reported += time;
  const item = document.createElement("li");
  item.dataset.track = current.record.track;
  item.dataset.time = time.toFixed(2);
  item.textContent = `${current.record.title} — ${describe(current.record)}: ${how} (${time.toFixed(2)})`;
  $("history").append(item);
  render();
}

// The track ended or was skipped: report it, show botify's answer as up
// next, and play it after the pause between tracks.
async function finish(time, how) {
  const record = state.current.record;
  endTrack(time, how);
  $("now-state").textContent = `${how} at ${time.toFixed(2)}`;
  try {
    const answer = await api("POST", `/next/${encodeURIComponent(state.user)}`, {
      track: record.track,
      time,
    });
    const next = await trackRecord(answer.track);
    $("next-title").textContent = next.title;
    $("next-title").dataset.track = next.track;
    $("next-meta").textContent = describe(next);
    setTimeout(() => {
      if (state.inSession) play(next);
    }, gapMs());
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
    endSession("the session stopped on an error");
  }
}

async function stop() {
  const record = state.current.record;
  const time = heard();
  endTrack(time, "stopped");
  try {
    await api("POST", `/last/${encodeURIComponent(state.user)}`, { track: record.track, time });
    endSession(`stopped at ${time.toFixed(2)}; session over`);
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
    endSession("the session stopped on an error");
  }
}

function endSession(text) {
  state.inSession = false;
  clearInterval(state.timer);
  setButtons(false);
  $("now-state").textContent = text;
  $("next-title").textContent = "—";
  $("next-title").dataset.track = "";
  $("next-meta").textContent = "";
  $("again").hidden = false;
}

function togglePause() {
  const current = state.current;
  if (!current || current.done) return;
  current.playing = !current.playing;
  current.lastTick = performance.now();
  $("pause").textContent = current.playing ? "Pause" : "Resume";
  $("now-state").textContent = current.playing ? "playing" : "paused";
}

async function start() {
  clearError();
  if (!state.picked) return;
  const user = $("user").value.trim();
  let treatment;
  try {
    treatment = await api("GET", `/user/${encodeURIComponent(user)}`);
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
    return;
  }
  state.user = user;
  state.reported = 0;
  state.inSession = true;
  $("treatment").textContent =
    `User ${treatment.user}: arm ${treatment.arm} of experiment ${treatment.experiment}, recommender ${treatment.recommender}`;
  $("treatment").dataset.arm = treatment.arm;
  $("treatment").dataset.recommender = treatment.recommender;
  $("history").replaceChildren();
  $("again").hidden = true;
  $("setup").hidden = true;
  $("session").hidden = false;
  play(state.picked);
}

function newSession() {
  clearError();
  state.current = null;
  $("session").hidden = true;
  $("setup").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", search);
  $("top-form").addEventListener("submit", showTop);
  $("start").addEventListener("click", start);
  $("pause").addEventListener("click", togglePause);
  $("skip").addEventListener("click", () => {
    if (state.current && !state.current.done) finish(heard(), "skipped");
  });
  $("stop").addEventListener("click", () => {
    if (state.current && !state.current.done) stop();
  });
  $("again").addEventListener("click", newSession);
});
