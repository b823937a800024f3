"use strict";
// The demo page: plain JS, no build step. Everything it does is one API call away.
// The DOM is built with text APIs only (createElement, textContent): data from the API
// (track titles, user ids, error messages) is never parsed as HTML. The server's CSP
// forbids inline script and style, so nothing here may rely on them.
// Money, errors in words, the API call and the session come from common.js (vezaUi).
const { $, el, money, explain, api, session, say, newKey } = window.vezaUi;
const log = (msg) => { $("log").textContent = `${new Date().toLocaleTimeString()} ${msg}\n` + $("log").textContent; };
// what an order's status means to a buyer or a seller (the API's codes stay in data-status)
const ORDER_WORDS = {
  pending_payment: "waiting for payment", paid: "paid", partially_refunded: "partly refunded",
  refunded: "refunded", failed: "payment failed", cancelled: "cancelled", expired: "expired",
  disputed: "disputed",
};
const orderWords = (status) => ORDER_WORDS[status] || status.replace(/_/g, " ");

// ---- session ------------------------------------------------------------------------

function showSession() {
  $("whoami").textContent = session.user || "nobody";
  $("role").textContent = session.role ? `(${session.role})` : "";
  $("logout").hidden = !session.user;
  $("login-form").hidden = Boolean(session.user);
  $("nav-admin").hidden = session.role !== "admin";
  $("nav-shares").hidden = !["creator", "admin"].includes(session.role);
}

async function login(user, password) {
  $("login-error").textContent = "";
  const answer = await api("POST", "/api/v1/auth/login", { user_id: user, password });
  Object.assign(session, { user: answer.user_id, role: answer.role, csrf: answer.csrf_token });
  $("login-password").value = "";
  showSession();
  log(`logged in as ${answer.user_id} (${answer.role})`);
  await loadTracks();
  return answer;
}

async function logout() {
  await api("POST", "/api/v1/auth/logout");
  Object.assign(session, { user: null, role: null, csrf: null });
  showSession();
  $("orders").replaceChildren();
  $("order").replaceChildren();
  say($("order-message"), "");
  say($("subscription"), "");
  log("logged out");
  await loadTracks();
}

async function whoAmI() {
  try {
    await window.vezaUi.whoAmI();  // 200 {"user": null} when logged out: no console error
  } catch (err) {
    log(`session: ${explain(err)}`);
  }
  showSession();
}

// ---- playback -------------------------------------------------------------------
const player = $("player");
let hls = null;

async function explainFailure(url) {
  // <audio> does not say why it failed: ask the URL ourselves and show a real message.
  try {
    const response = await fetch(url);
    if (response.status === 401) return "Log in to play this track.";
    if (response.status === 403) {
      const text = await response.text();
      if (/buy this track/i.test(text)) return "Buy this track to play it.";
      const expired = /expire/i.test(text);
      return expired ? "This link has expired. Press Play again for a fresh one."
                     : "This link is not valid (403). Press Play again for a fresh one.";
    }
    if (!response.ok) return `The track could not be loaded (${response.status}).`;
  } catch { return "The track could not be loaded: the server could not be reached."; }
  return "The track could not be played by this browser.";
}

player.addEventListener("error", async () => {
  const url = player.currentSrc || player.src;
  $("player-error").textContent = await explainFailure(url);
  log(`player error: ${$("player-error").textContent}`);
});
player.addEventListener("playing", () => { $("player-error").textContent = ""; });

function playUrl(url, label) {
  if (hls) { hls.destroy(); hls = null; }
  $("player-error").textContent = "";
  player.src = url;
  $("now-playing").textContent = label || url;
  return startPlayback(label || url);
}

// hls.js (served by the app at /vendor/hls.min.js) when the browser has Media Source
// Extensions; the browser's own HLS (Safari, iOS) otherwise. Every play() promise is
// caught: a refused autoplay or an unplayable source becomes a message, never an
// uncaught rejection.
const hlsLoaded = new Promise((resolve) => {
  const script = document.createElement("script");
  script.src = "/vendor/hls.min.js";
  script.onload = () => resolve(window.Hls || null);
  script.onerror = () => { log("hls.js is not installed on this server: HLS plays only where the browser plays it natively"); resolve(null); };
  document.head.append(script);
});

function startPlayback(label) {
  return player.play().catch((err) => {
    log(`play: ${err.message}`);
    // a newer source replaced this one, or the source failed: the error event explains it
    if (err.name === "AbortError" || err.name === "NotSupportedError") return;
    $("player-error").textContent = `${label} could not start: ${err.message}`;
  });
}

async function playHls(track) {
  if (hls) { hls.destroy(); hls = null; }
  const src = `/api/v1/tracks/${encodeURIComponent(track.id)}/hls`;
  $("player-error").textContent = "";
  $("now-playing").textContent = `${track.title} (HLS)`;
  const Hls = await hlsLoaded;
  if (Hls && Hls.isSupported()) {
    hls = new Hls();
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) { $("player-error").textContent = `HLS error: ${data.details}`; }
      log(`hls: ${data.details}`);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { startPlayback(track.title); });
    hls.loadSource(src);
    hls.attachMedia(player);
  } else if (player.canPlayType("application/vnd.apple.mpegurl")) {
    player.src = src;
    await startPlayback(track.title);
  } else {
    $("player-error").textContent = "This browser cannot play HLS (no Media Source Extensions and no native HLS): use Play.";
  }
}

// ---- HLS renditions (a background job on the server) --------------------------------
// The page polls /api/v1/hls/status while renditions are being cut and shows it; when
// ffmpeg is missing it says so once. A finished job reloads the tracks (its Play HLS
// button appears).
let hlsPoll = null;
let hlsReady = new Set();

async function refreshHlsStatus() {
  const status = await api("GET", "/api/v1/hls/status");
  $("hls-status").textContent = status.message;
  $("hls-status").className = status.ffmpeg || !status.enabled ? "" : "error";
  const jobs = Object.entries(status.jobs);
  const ready = jobs.filter(([, job]) => job.state === "ready").map(([id]) => id);
  for (const [id, job] of jobs) {
    const cell = document.querySelector(`tr[data-track-id="${CSS.escape(id)}"] .hls-state`);
    if (cell) cell.textContent = job.state === "failed" ? `HLS failed: ${job.detail}` : (job.state === "ready" ? "" : `HLS ${job.state}…`);
  }
  if (ready.some((id) => !hlsReady.has(id))) { hlsReady = new Set(ready); await loadTracks(); }
  const pending = jobs.some(([, job]) => job.state === "queued" || job.state === "running");
  clearTimeout(hlsPoll);
  if (pending) hlsPoll = setTimeout(() => refreshHlsStatus().catch((e) => log(`hls status: ${e.message}`)), 1000);
  return status;
}

// ---- tracks and orders --------------------------------------------------------------
function button(text, className, onclick) {
  const node = el("button", { type: "button", textContent: text, className });
  node.onclick = () => onclick(node);
  return node;
}

// The tracks the logged-in user owns: set by loadTracks, kept current by renderOrder.
let ownedIds = new Set();

// Only the buttons that make sense for this order, for this user, now: Pay for its
// buyer while it waits for payment; Refund for its seller or an admin while something is
// left to refund and no refund is still pending.
function renderOrder(order) {
  const cur = order.currency;
  const refunds = order.refunds.map((r) => `${money(r.amount, cur)} ${orderWords(r.status)}`).join(", ") || "none";
  const transfers = order.transfers.map((t) => `${money(t.amount, cur)} ${orderWords(t.status)}`).join(", ") || "none";
  const status = el("strong", { id: "order-status" }, orderWords(order.status));
  status.dataset.status = order.status;
  const buttons = [];
  const isBuyer = session.user === order.buyer_id;
  const mayRefund = session.user === order.seller_id || session.role === "admin";
  const left = order.captured - order.refunded;
  const pendingRefund = order.refunds.some((r) => r.status === "pending");
  if (isBuyer && order.status === "pending_payment") buttons.push(button("Pay (sandbox)", "pay", (b) => pay(order, b)));
  if (mayRefund && ["paid", "partially_refunded"].includes(order.status) && left > 0 && !pendingRefund) {
    if (left > 100) buttons.push(button(`Refund ${money(100, cur)}`, "refund-part", (b) => refund(order, 100, b)));
    buttons.push(button(`Refund the rest (${money(left, cur)})`, "refund-all", (b) => refund(order, null, b)));
  }
  $("order").replaceChildren(
    el("p", {}, "Order ", el("code", {}, order.order_id), ": ", status,
       `, ${money(order.amount, cur)} (paid ${money(order.captured, cur)}, refunded ${money(order.refunded, cur)})`),
    el("p", {}, `Buyer ${order.buyer_id}, seller ${order.seller_id}. Refunds: ${refunds}. Seller transfer: ${transfers}.`),
    ...buttons,
  );
  $("order").dataset.orderId = order.order_id;
  // what Play decides from follows the state just shown: a Play clicked the moment "Paid"
  // appears plays, without waiting for the track list to reload (and a full refund stops it)
  if (session.user && session.user === order.buyer_id && order.track_id) {
    if (["paid", "partially_refunded"].includes(order.status)) ownedIds.add(order.track_id);
    else ownedIds.delete(order.track_id);
  }
  // the same order in "My orders", if listed, says the same thing
  const listed = document.querySelector(`li[data-order-id="${CSS.escape(order.order_id)}"] .order-state`);
  if (listed) listed.textContent = orderWords(order.status);
}

// Polls until `until` holds: every half second for 20 s, then every 2 s up to two
// minutes, so a provider that confirms late (a webhook retried under load) still
// reaches the page rather than leaving it on a state that is no longer true.
async function refreshOrder(orderId, until) {
  for (let i = 0; i < 90; i++) {
    const order = await api("GET", `/api/v1/orders/${encodeURIComponent(orderId)}`);
    renderOrder(order);
    if (!until || until(order)) return order;
    await new Promise((r) => setTimeout(r, i < 40 ? 500 : 2000));
  }
}

// A button that is disabled while its action runs: a second click cannot start it twice.
async function busy(node, action) {
  if (node) node.disabled = true;
  try { return await action(); } finally { if (node) node.disabled = false; }
}

// One Idempotency-Key per click: a retried request is the same order, never a second one.
async function buy(track, node) {
  say($("order-message"), "");
  return busy(node, async () => {
    try {
      const order = await api("POST", "/api/v1/orders", { track_id: track.id }, { "idempotency-key": newKey() });
      log(`order ${order.order_id}: payment ${order.payment_id} ${order.status}`);
      say($("order-message"), `Order for "${track.title}" created: ${money(order.amount, order.currency)}, waiting for payment.`, "ok");
      return await refreshOrder(order.order_id);
    } catch (err) {
      say($("order-message"), `Could not buy "${track.title}": ${explain(err)}`, "error");
      log(`buy: ${err.detail || err.message}`);
    }
  });
}

async function pay(order, node) {
  say($("order-message"), "");
  return busy(node, async () => {
    try {
      await api("POST", `/api/v1/sandbox/payments/${encodeURIComponent(order.payment_id)}/confirm`);
      say($("order-message"), "Payment sent: waiting for the payment provider to confirm it…", "ok");
      const done = await refreshOrder(order.order_id, (o) => o.status !== "pending_payment");
      await loadTracks();  // Buy turns to Bought
      say($("order-message"), done && done.status === "paid" ? "Paid: the track is yours." : `The payment ended as: ${orderWords(done ? done.status : "pending_payment")}.`,
        done && done.status === "paid" ? "ok" : "error");
      return done;
    } catch (err) {
      say($("order-message"), `Could not pay: ${explain(err)}`, "error");
      log(`pay: ${err.detail || err.message}`);
    }
  });
}

async function refund(order, amount, node) {
  say($("order-message"), "");
  return busy(node, async () => {
    try {
      const result = await api("POST", `/api/v1/orders/${encodeURIComponent(order.order_id)}/refunds`, amount ? { amount } : {});
      log(`refund ${result.refund_id}: ${money(result.amount, order.currency)} (${result.provider_status} at the PSP)`);
      say($("order-message"), `Refund of ${money(result.amount, order.currency)} sent to the buyer.`, "ok");
    } catch (err) {
      say($("order-message"), `Could not refund: ${explain(err)}`, "error");
      log(`refund refused: ${err.detail || err.message}`);
    }
    return refreshOrder(order.order_id, (o) => o.refunds.every((r) => r.status !== "pending"));
  });
}

async function loadOrders() {
  const orders = await api("GET", "/api/v1/orders");
  $("orders").replaceChildren(...orders.map((o) => {
    const item = el("li", {}, `${o.track_title} — ${money(o.amount, o.currency)} — `, el("span", { className: "order-state" }, orderWords(o.status)), " ",
      button("Open", "open-order", () => refreshOrder(o.order_id).catch((e) => say($("order-message"), explain(e), "error"))));
    item.dataset.orderId = o.order_id;
    return item;
  }));
  return orders;
}

// Tracks the logged-in user has bought and not had refunded in full: "Bought", not "Buy".
async function ownedTracks() {
  if (!session.user) return new Set();
  const orders = await api("GET", "/api/v1/orders");
  return new Set(orders.filter((o) => o.buyer_id === session.user && ["paid", "partially_refunded"].includes(o.status)).map((o) => o.track_id));
}

async function loadTracks() {
  const [tracks, owned] = await Promise.all([api("GET", "/api/v1/tracks"), ownedTracks()]);
  ownedIds = owned;
  const rows = tracks.map((track) => {
    const cell = el("td");
    // the server decides (a 401/403 otherwise), but the page knows the answer already:
    // say it rather than send a request the browser would log as an error
    // decided at click time: a row rendered before a login must not keep refusing after it
    const mayPlay = () => track.price === 0 || session.role === "admin" || session.user === track.owner_id || ownedIds.has(track.id);
    const refuse = () => {
      $("player-error").textContent = session.user ? "Buy this track to play it." : "Log in and buy this track to play it.";
    };
    cell.append(button("Play", "play", () => (mayPlay() ? playUrl(track.stream_url, track.title) : refuse())));
    if (track.hls) cell.append(button("Play HLS", "play-hls", () => (mayPlay() ? playHls(track).catch((e) => log(`hls: ${e.message}`)) : refuse())));
    cell.append(el("span", { className: "hls-state" }));
    if (owned.has(track.id)) {
      cell.append(el("span", { className: "owned ok" }, "Bought"));
    } else if (session.user && session.user !== track.owner_id) {
      cell.append(button("Buy", "buy", (node) => buy(track, node)));
    }
    const row = el("tr", {}, el("td", { className: "title" }, track.title), el("td", {}, track.owner_id),
      el("td", { className: "price" }, money(track.price, track.currency)), cell);
    row.dataset.trackId = track.id;
    return row;
  });
  $("tracks").replaceChildren(...rows);
  return tracks;
}

// ---- chunked upload -----------------------------------------------------------------
// Tracks are audio: the file picker offers audio files (accept="audio/*"), the page
// refuses another type at once, and the server checks the content itself (415).
async function upload() {
  const file = $("file").files[0];
  say($("upload-status"), "");
  if (!file) { say($("upload-status"), "Choose a file first.", "error"); return; }
  if (file.type && !file.type.startsWith("audio/")) {
    say($("upload-status"), `"${file.name}" is not an audio file: choose an MP3, WAV, FLAC, Ogg, M4A or AIFF file.`, "error");
    return;
  }
  const begin = await api("POST", "/api/v1/uploads", {
    filename: file.name, size: file.size, content_type: file.type || "audio/mpeg",
    title: $("title").value || file.name, chunk_size: 256 * 1024,
  });
  $("progress").max = begin.chunk_count;
  for (let i = 0; i < begin.chunk_count; i++) {
    const chunk = file.slice(i * begin.chunk_size, (i + 1) * begin.chunk_size);
    const response = await fetch(`/api/v1/uploads/${encodeURIComponent(begin.upload_id)}/chunks/${i}`, {
      method: "PUT", body: chunk, credentials: "same-origin", headers: { "x-csrf-token": session.csrf || "" },
    });
    if (!response.ok) {
      let error = {};
      try { error = (await response.json()).error || {}; } catch { /* not JSON: the status says enough */ }
      throw new window.vezaUi.ApiError(response.status, error.type || null, error.message || null);
    }
    $("progress").value = i + 1;
    $("upload-status").textContent = `${i + 1}/${begin.chunk_count} chunks`;
  }
  const track = await api("POST", `/api/v1/uploads/${encodeURIComponent(begin.upload_id)}/complete`);
  say($("upload-status"), `uploaded: ${track.title}`, "ok");
  $("upload-status").dataset.trackId = track.id;
  log(`uploaded ${track.title} (${track.size} bytes) as ${track.storage_backend}:${track.storage_key}`);
  await loadTracks();
  await refreshHlsStatus();  // its rendition is being cut in the background
  return track;
}

// ---- subscriptions ------------------------------------------------------------------
// The plan is active only when the payment's webhook lands, a moment after the payment:
// the page says "waiting for payment" and asks again until it is (or gives up, saying so).
const ELIGIBILITY_WORDS = {
  ok: "Your plan is active: you can distribute your tracks.",
  no_plan: "You have no plan yet: subscribe to distribute your tracks.",
  plan_too_low: "Your plan does not include distribution: choose a higher plan.",
  payment_incomplete: "Waiting for payment: your plan turns on as soon as it is confirmed.",
};

function showEligibility(answer) {
  say($("subscription"), ELIGIBILITY_WORDS[answer.reason] || answer.message, answer.eligible || answer.reason === "payment_incomplete" ? "ok" : "error");
  $("subscription").dataset.reason = answer.reason;
}

async function subscribe(node) {
  if (!session.user) { say($("subscription"), "Log in first.", "error"); return; }
  return busy(node, async () => {
    try {
      const result = await api("POST", "/api/v1/subscriptions", { plan: "creator" });
      say($("subscription"), "Waiting for payment…", "ok");
      $("subscription").dataset.reason = "payment_incomplete";
      await api("POST", `/api/v1/sandbox/payments/${encodeURIComponent(result.payment_id)}/confirm`);
      for (let i = 0; i < 60; i++) {
        const answer = await api("GET", `/api/v1/users/${encodeURIComponent(session.user)}/distribution`);
        if (answer.eligible || answer.reason !== "payment_incomplete") { showEligibility(answer); return answer; }
        await new Promise((r) => setTimeout(r, 500));
      }
      say($("subscription"), "The payment has not been confirmed yet. Check again in a minute with \"Can I distribute?\".", "error");
    } catch (err) {
      say($("subscription"), `Could not subscribe: ${explain(err)}`, "error");
      log(`subscribe: ${err.detail || err.message}`);
    }
  });
}

async function eligibility() {
  if (!session.user) { say($("subscription"), "Log in first.", "error"); return; }
  try {
    showEligibility(await api("GET", `/api/v1/users/${encodeURIComponent(session.user)}/distribution`));
  } catch (err) { say($("subscription"), explain(err), "error"); }
}

$("login-form").onsubmit = (event) => {
  event.preventDefault();
  login($("login-user").value, $("login-password").value)
    .catch((e) => { $("login-error").textContent = e.status === 401 ? "Wrong user or password." : explain(e); });
};
$("logout").onclick = () => logout().catch((e) => log(e.message));
$("upload").onclick = () => busy($("upload"), upload).catch((e) => say($("upload-status"), `Upload refused: ${explain(e)}`, "error"));
$("my-orders").onclick = () => loadOrders().catch((e) => say($("order-message"), explain(e), "error"));
$("subscribe").onclick = () => subscribe($("subscribe"));
$("eligibility").onclick = () => eligibility();
window.veza = { playUrl, playHls, refreshHlsStatus, loadTracks, loadOrders, upload, buy, pay, refund, login, logout, api, session, money };

whoAmI()
  .then(loadTracks)
  .then((tracks) => log(`${tracks.length} tracks`))
  .then(refreshHlsStatus)
  .catch((e) => log(e.message));
