"use strict";
// Two pages, one call: signalling over a BroadcastChannel (same browser, same origin),
// media-less data channel, ICE servers and credentials from the app.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const role = params.get("role") === "callee" ? "callee" : "caller";
const relay = params.get("relay") === "1";
// how long to wait for the other side before saying why not (seconds; ?wait=5 in tests)
const patience = Math.min(Math.max(Number(params.get("wait")) || 15, 1), 120);
const channel = new BroadcastChannel("veza-call");
const result = { role, state: "starting", localType: null, remoteType: null, received: [] };
window.vezaCall = result;
$("role").textContent = role;
$("policy").textContent = relay ? "relay only" : "all";

function warn(message) {
  $("warning").textContent = message;
  result.warning = message;
}

// Connected: whatever went wrong before (a slow start, a retried candidate) is over.
function setState(state) {
  result.state = state;
  $("state").textContent = state;
  if (state === "connected") warn("");
}

// Why a call did not connect, in three different sentences: nobody answered, no relay
// to fall back on, or a relay that is there but refused us.
const NEVER_JOINED = "The other side never joined: open this page as the other role (caller or callee) in another tab of this browser.";
const NO_RELAY = "The call could not connect directly and no relay (TURN server) is configured to carry it: set WEBRTC_TURN_URLS and WEBRTC_TURN_SECRET on the server.";
const RELAY_REFUSED = "The call could not connect: the relay (TURN server) refused the credentials or is unreachable (check WEBRTC_TURN_SECRET and that the server is running).";

async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) pair = stats.get(report.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((report) => { if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") pair = report; });
  if (!pair) return null;
  return { local: stats.get(pair.localCandidateId), remote: stats.get(pair.remoteCandidateId) };
}

async function main() {
  // TURN credentials are issued to the logged-in user only (the session cookie).
  const response = await fetch("/api/v1/config/webrtc", { credentials: "same-origin" });
  if (response.status === 401) {
    warn("Log in on the main page first: calls use your account's TURN credentials.");
    setState("failed");
    return;
  }
  if (!response.ok) {
    warn(`The call configuration could not be loaded (${response.status}).`);
    setState("failed");
    return;
  }
  const config = await response.json();
  let peerJoined = false;
  const why = () => (!peerJoined ? NEVER_JOINED : (config.hasTurn ? RELAY_REFUSED : NO_RELAY));
  result.hasTurn = Boolean(config.hasTurn);
  if (relay && !config.hasTurn) {
    result.reason = "no-relay";
    warn("No relay (TURN server) is configured on this server (WEBRTC_TURN_URLS): a relayed call cannot work.");
    setState("failed");
    return;
  }
  const pc = new RTCPeerConnection({ iceServers: config.iceServers, iceTransportPolicy: relay ? "relay" : "all" });
  pc.onicecandidate = (event) => { if (event.candidate) channel.postMessage({ from: role, candidate: event.candidate.toJSON() }); };
  pc.onconnectionstatechange = () => {
    setState(pc.connectionState);
    if (pc.connectionState === "failed") {
      result.reason = !peerJoined ? "never-joined" : (config.hasTurn ? "relay-refused" : "no-relay");
      warn(why());
    }
  };
  const onChannel = (dc) => {
    dc.onmessage = (event) => {
      result.received.push(event.data);
      $("messages").textContent = result.received.join(", ");
      if (role === "callee" && event.data.startsWith("ping")) dc.send(`pong from callee`);
    };
    dc.onopen = async () => {
      if (role === "caller") dc.send("ping from caller");
      const pair = await selectedPair(pc);
      if (pair) {
        result.localType = pair.local.candidateType;
        result.remoteType = pair.remote.candidateType;
        $("pair").textContent = `${pair.local.candidateType} (${pair.local.protocol}) ↔ ${pair.remote.candidateType}`;
      }
    };
  };
  pc.ondatachannel = (event) => onChannel(event.channel);
  channel.onmessage = async ({ data }) => {
    if (data.from === role) return;
    peerJoined = true;
    if (data.hello && role === "callee" && !data.reply) channel.postMessage({ from: role, hello: true, reply: true });
    if (data.hello && role === "caller") await call();
    if (data.offer && role === "callee") {
      await pc.setRemoteDescription(data.offer);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      channel.postMessage({ from: role, answer: pc.localDescription.toJSON() });
    }
    if (data.answer && role === "caller") await pc.setRemoteDescription(data.answer);
    if (data.candidate) { try { await pc.addIceCandidate(data.candidate); } catch (err) { console.warn(err); } }
  };
  async function call() {
    if (pc.signalingState !== "stable" || pc.localDescription) return;
    onChannel(pc.createDataChannel("chat"));
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    channel.postMessage({ from: role, offer: pc.localDescription.toJSON() });
  }
  setState("waiting for the other page");
  channel.postMessage({ from: role, hello: true });
  setTimeout(() => {
    if (pc.connectionState !== "connected") {
      warn(why());
      result.reason = !peerJoined ? "never-joined" : (config.hasTurn ? "relay-refused" : "no-relay");
      setState("failed");
    }
  }, patience * 1000);
}

main().catch((err) => { warn(err.message); setState("failed"); });
