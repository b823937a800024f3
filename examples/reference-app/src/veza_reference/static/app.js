"use strict";
// The demo page: plain JS, no build step. Everything it does is one API call away.
const $ = (id) => document.getElementById(id);
const log = (msg) => { $("log").textContent = `${new Date().toLocaleTimeString()} ${msg}\n` + $("log").textContent; };
const euros = (cents) => (cents / 100).toFixed(2) + " €";

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `${response.status} ${text}`;
    throw new Error(message);
  }
  return data;
}

// ---- playback -------------------------------------------------------------------
const player = $("player");
let hls = null;

async function explainFailure(url) {
  // <audio> does not say why it failed: ask the URL ourselves and show a real message.
  try {
    const response = await fetch(url);
    if (response.status === 403) {
      const text = await response.text();
      const expired = /expire/i.test(text);
      return expired ? "This link has expired. Press Play again for a fresh one."
                     : "This link is not valid (403). Press Play again for a fresh one.";
    }
    if (!response.ok) return `The track could not be loaded (${response.status}).`;
  } catch (err) { return `The track could not be loaded: ${err.message}`; }
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
  return player.play().catch((err) => log(`play: ${err.message}`));
}

async function playHls(track) {
  if (hls) { hls.destroy(); hls = null; }
  const src = `/api/v1/tracks/${track.id}/hls`;
  $("player-error").textContent = "";
  $("now-playing").textContent = `${track.title} (HLS)`;
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) { $("player-error").textContent = `HLS error: ${data.details}`; }
      log(`hls: ${data.details}`);
    });
    hls.loadSource(src);
    hls.attachMedia(player);
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => player.play().catch((e) => log(e.message)));
  } else if (player.canPlayType("application/vnd.apple.mpegurl")) {
    player.src = src; player.play();
  } else {
    $("player-error").textContent = "HLS needs hls.js (VEZA_HLS_JS_PATH) in this browser.";
  }
}

// ---- tracks and orders --------------------------------------------------------------
let currentOrder = null;

function renderOrder(order) {
  currentOrder = order;
  const refunds = order.refunds.map((r) => `${euros(r.amount)} ${r.status}`).join(", ") || "none";
  const transfers = order.transfers.map((t) => `${euros(t.amount)} ${t.status}`).join(", ") || "none";
  $("order").innerHTML = `
    <p>Order <code>${order.order_id}</code>: <strong id="order-status">${order.status}</strong>,
       ${euros(order.amount)} (captured ${euros(order.captured)}, refunded ${euros(order.refunded)})</p>
    <p>Refunds: ${refunds}. Seller transfer: ${transfers}.</p>
    <button id="pay">Pay (sandbox)</button>
    <button id="refund-part">Refund 1.00 €</button>
    <button id="refund-all">Refund the rest</button>`;
  $("pay").onclick = () => pay(order);
  $("refund-part").onclick = () => refund(order, 100);
  $("refund-all").onclick = () => refund(order, null);
}

async function refreshOrder(orderId, until) {
  for (let i = 0; i < 40; i++) {
    const order = await api("GET", `/api/v1/orders/${orderId}`);
    renderOrder(order);
    if (!until || until(order)) return order;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function buy(track) {
  const order = await api("POST", "/api/v1/orders", { track_id: track.id, buyer_id: "listener-1" });
  log(`order ${order.order_id}: payment ${order.payment_id} ${order.status}`);
  await refreshOrder(order.order_id);
}

async function pay(order) {
  await api("POST", `/api/v1/sandbox/payments/${order.payment_id}/confirm`);
  log("paid in the sandbox; waiting for the webhook");
  await refreshOrder(order.order_id, (o) => o.status !== "pending_payment");
}

async function refund(order, amount) {
  try {
    const result = await api("POST", `/api/v1/orders/${order.order_id}/refunds`, amount ? { amount } : {});
    log(`refund ${result.refund_id}: ${euros(result.amount)} (${result.provider_status} at the PSP)`);
  } catch (err) { log(`refund refused: ${err.message}`); }
  await refreshOrder(order.order_id, (o) => o.refunds.every((r) => r.status !== "pending"));
}

async function loadTracks() {
  const tracks = await api("GET", "/api/v1/tracks");
  const body = $("tracks");
  body.innerHTML = "";
  for (const track of tracks) {
    const row = document.createElement("tr");
    row.dataset.trackId = track.id;
    row.innerHTML = `<td>${track.title}</td><td>${track.owner_id}</td><td>${euros(track.price)}</td><td></td>`;
    const cell = row.lastElementChild;
    const play = Object.assign(document.createElement("button"), { textContent: "Play", className: "play" });
    play.onclick = () => playUrl(track.stream_url, track.title);
    cell.append(play);
    if (track.hls) {
      const hlsButton = Object.assign(document.createElement("button"), { textContent: "Play HLS", className: "play-hls" });
      hlsButton.onclick = () => playHls(track);
      cell.append(hlsButton);
    }
    const buyButton = Object.assign(document.createElement("button"), { textContent: "Buy", className: "buy" });
    buyButton.onclick = () => buy(track).catch((e) => log(`buy: ${e.message}`));
    cell.append(buyButton);
    body.append(row);
  }
  return tracks;
}

// ---- chunked upload -----------------------------------------------------------------
async function upload() {
  const file = $("file").files[0];
  if (!file) { $("upload-status").textContent = "Choose a file first."; return; }
  const begin = await api("POST", "/api/v1/uploads", {
    filename: file.name, size: file.size, content_type: file.type || "audio/mpeg",
    title: $("title").value || file.name, chunk_size: 256 * 1024,
  });
  $("progress").max = begin.chunk_count;
  for (let i = 0; i < begin.chunk_count; i++) {
    const chunk = file.slice(i * begin.chunk_size, (i + 1) * begin.chunk_size);
    const response = await fetch(`/api/v1/uploads/${begin.upload_id}/chunks/${i}`, { method: "PUT", body: chunk });
    if (!response.ok) throw new Error(`chunk ${i}: ${response.status}`);
    $("progress").value = i + 1;
    $("upload-status").textContent = `${i + 1}/${begin.chunk_count} chunks`;
  }
  const track = await api("POST", `/api/v1/uploads/${begin.upload_id}/complete`);
  $("upload-status").textContent = `uploaded: ${track.title}`;
  $("upload-status").dataset.trackId = track.id;
  log(`uploaded ${track.title} (${track.size} bytes) as ${track.storage_backend}:${track.storage_key}`);
  await loadTracks();
  return track;
}

// ---- subscriptions ------------------------------------------------------------------
async function subscribe() {
  const user = $("user").value;
  const result = await api("POST", "/api/v1/subscriptions", { user_id: user, plan: "creator" });
  $("subscription").textContent = `Subscription ${result.subscription_status}; paying…`;
  await api("POST", `/api/v1/sandbox/payments/${result.payment_id}/confirm`);
  await eligibility();
}

async function eligibility() {
  const answer = await api("GET", `/api/v1/users/${encodeURIComponent($("user").value)}/distribution`);
  $("subscription").textContent = answer.message;
  $("subscription").className = answer.eligible ? "ok" : "error";
}

$("upload").onclick = () => upload().catch((e) => { $("upload-status").textContent = e.message; });
$("subscribe").onclick = () => subscribe().catch((e) => log(e.message));
$("eligibility").onclick = () => eligibility().catch((e) => log(e.message));
window.veza = { playUrl, playHls, loadTracks, upload, buy, api };

const hlsScript = document.createElement("script");
hlsScript.src = "/vendor/hls.min.js";
hlsScript.onerror = () => log("hls.js not available: HLS plays only where the browser supports it");
document.head.append(hlsScript);
loadTracks().then((tracks) => log(`${tracks.length} tracks`)).catch((e) => log(e.message));
