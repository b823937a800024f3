"use strict";
// The owner's share links: make one for a track, see them all, revoke one.
const { $, el, api, explain, session, say, whoAmI } = window.vezaUi;
const STATE_WORDS = { active: "active", expired: "expired", revoked: "revoked" };
const when = (iso) => new Date(iso).toLocaleString();

async function loadShares() {
  const shares = await api("GET", "/api/v1/shares");
  $("shares").replaceChildren(...shares.map((share) => {
    const cell = el("td");
    if (share.state === "active") {
      const revoke = el("button", { type: "button", className: "revoke", textContent: "Revoke" });
      revoke.onclick = () => revokeShare(share, revoke);
      cell.append(revoke);
    }
    const row = el("tr", {}, el("td", {}, share.track_title), el("td", { className: "state" }, STATE_WORDS[share.state] || share.state),
      el("td", {}, when(share.created_at)), el("td", {}, when(share.expires_at)),
      el("td", {}, share.uses === 1 ? "once" : `${share.uses} times`), cell);
    row.dataset.shareId = share.share_id;
    row.dataset.state = share.state;
    return row;
  }));
  if (!shares.length) $("shares").append(el("tr", {}, el("td", { colSpan: 6 }, "No share links yet.")));
  return shares;
}

async function createShare() {
  say($("share-message"), "");
  $("share-new").hidden = true;
  const trackId = $("share-track").value;
  if (!trackId) { say($("share-message"), "You have no track to share yet: upload one first.", "error"); return; }
  $("share-create").disabled = true;
  try {
    const link = await api("POST", `/api/v1/tracks/${encodeURIComponent(trackId)}/shares`, { expires_in: Number($("share-expiry").value) });
    $("share-url").value = link.url;
    $("share-new").hidden = false;
    say($("share-message"), `Link made for "${link.track_title}", valid until ${when(link.expires_at)}.`, "ok");
    await loadShares();
    return link;
  } catch (err) {
    say($("share-message"), `Could not make the link: ${explain(err)}`, "error");
  } finally { $("share-create").disabled = false; }
}

async function revokeShare(share, node) {
  node.disabled = true;
  say($("share-message"), "");
  try {
    await api("DELETE", `/api/v1/shares/${encodeURIComponent(share.share_id)}`);
    say($("share-message"), `The link to "${share.track_title}" no longer works.`, "ok");
    $("share-new").hidden = true;
  } catch (err) {
    say($("share-message"), `Could not revoke the link: ${explain(err)}`, "error");
    node.disabled = false;
  }
  return loadShares();
}

async function main() {
  await whoAmI();
  $("whoami").textContent = session.user || "nobody";
  // only creators (and admins) own tracks: nobody else gets requests that would be refused
  if (!session.user || !["creator", "admin"].includes(session.role)) {
    $("gate").textContent = session.user ? "Share links are for creators: your account has no tracks to share."
                                         : "Log in on the main page (as a creator) to share your tracks.";
    $("gate").hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  const tracks = (await api("GET", "/api/v1/tracks")).filter((t) => t.owner_id === session.user);
  $("share-track").replaceChildren(...tracks.map((t) => el("option", { value: t.id, textContent: t.title })));
  $("make").hidden = false;
  $("list").hidden = false;
  $("share-create").onclick = () => createShare();
  await loadShares();
  document.body.dataset.ready = "true";
}

window.vezaShares = { loadShares, createShare, revokeShare };
main().catch((err) => { $("gate").textContent = explain(err); $("gate").hidden = false; });
