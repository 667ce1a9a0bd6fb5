// Drives botify's web player in headless Chromium, as a listener would on a
// phone-sized screen, and prints what the page showed as one JSON object on
// stdout. botify/tests/player_e2e.rs starts botify, runs this script and
// checks the printed session against botify's event log.
//
// Usage: node e2e/player.mjs http://127.0.0.1:PORT
// Environment: CHROMIUM (default /usr/bin/chromium).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

const base = process.argv[2];
if (!base) {
  console.error("usage: node e2e/player.mjs http://127.0.0.1:PORT");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const SECONDS_PER_TRACK = 1.5;
const GAP_SECONDS = 1;
const TIMEOUT_MS = 20_000;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "botify-player-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
});

const report = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));

  const response = await page.goto(`${base}/player`);
  report.status = response.status();
  report.heading = await page.textContent("h1");
  report.overflows = await page.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
  );

  const errorText = async () => {
    await page.waitForSelector("#error:not([hidden])");
    return page.textContent("#error");
  };

  // Bad input: the API's own error messages are shown.
  await page.fill("#query", "");
  await page.click("#search");
  report.empty_search_error = await errorText();

  await page.fill("#query", "t17");
  await page.click("#search");
  await page.waitForSelector("#results button");
  report.search_results = await page.$$eval("#results button", (buttons) =>
    buttons.map((b) => Number(b.dataset.track)),
  );
  await page.click("#results button >> nth=0");
  report.picked = Number(await page.getAttribute("#picked", "data-track"));

  await page.fill("#user", "not-a-user");
  await page.click("#start");
  report.bad_user_error = await errorText();

  // The session: user 7, the picked track first.
  await page.fill("#user", "7");
  await page.fill("#seconds", String(SECONDS_PER_TRACK));
  await page.fill("#gap", String(GAP_SECONDS));
  await page.click("#start");
  await page.waitForSelector("#treatment[data-arm]");
  report.arm = await page.getAttribute("#treatment", "data-arm");
  report.recommender = await page.getAttribute("#treatment", "data-recommender");

  const played = [];
  const upNext = [];
  // Waits for track `index` (0-based) to be playing with at least `fraction` heard.
  const playing = (index, fraction) =>
    page.waitForFunction(
      ([index, fraction]) =>
        document.querySelectorAll("#history li").length === index &&
        document.getElementById("now-state").textContent === "playing" &&
        Number(document.getElementById("heard").textContent) >= fraction,
      [index, fraction],
    );
  const ended = (count) =>
    page.waitForFunction(
      (count) => document.querySelectorAll("#history li").length === count,
      count,
    );
  // After a track ends, botify's answer is shown as up next.
  const recordUpNext = async () => {
    await page.waitForSelector("#next-title[data-track]:not([data-track=''])");
    upNext.push({
      track: Number(await page.getAttribute("#next-title", "data-track")),
      meta: await page.textContent("#next-meta"),
    });
  };
  const nowPlaying = async () => ({
    track: Number(await page.getAttribute("#now-title", "data-track")),
    meta: await page.textContent("#now-meta"),
    similar_shown: await page
      .waitForSelector("#similar-list li")
      .then(() => page.$$eval("#similar-list button", (b) => b.length)),
  });
  // Pauses once `fraction` is heard, reads what the page shows, then presses `button`.
  const pauseThen = async (index, fraction, button) => {
    await playing(index, fraction);
    await page.click("#pause");
    const heard = Number(await page.textContent("#heard"));
    await page.click(button);
    return heard;
  };

  // The session, track by track: played to the end, or paused once `at` is
  // heard and then skipped or stopped (which ends the session).
  const session = [
    {}, // the pick, to the end
    { at: 0.45, press: "#skip" }, // near half-way
    {}, // to the end
    { at: 0.25, press: "#skip" }, // early
    { at: 0.55, press: "#stop" }, // past half-way
  ];
  for (const [index, track] of session.entries()) {
    await playing(index, 0);
    played.push(await nowPlaying());
    if (track.press) {
      played[index].shown_heard = await pauseThen(index, track.at, track.press);
    }
    if (track.press === "#stop") {
      break;
    }
    await ended(index + 1);
    await recordUpNext();
  }
  await page.waitForFunction(() =>
    document.getElementById("now-state").textContent.includes("session over"),
  );

  report.played = played;
  report.up_next = upNext;
  report.history = await page.$$eval("#history li", (items) =>
    items.map((li) => ({ track: Number(li.dataset.track), time: Number(li.dataset.time) })),
  );
  report.listen_time = await page.textContent("#listen-time");

  // The top panel, for one genre.
  await page.fill("#genre", "g2");
  await page.click("#top");
  await page.waitForSelector("#top-list button");
  report.top_g2 = await page.$$eval("#top-list button", (buttons) =>
    buttons.map((b) => Number(b.dataset.track)),
  );
  report.page_errors = pageErrors;
  report.overflows_after = await page.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
  );
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
