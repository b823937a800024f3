"use strict";
// The admin page: money flows and balances (with charts drawn here as inline SVG: no
// chart library, no CDN), reconciliation findings and webhook deliveries. The page asks
// the admin API only when the session is an admin's, so nobody else sees a refused call.
const { $, el, api, explain, money, session, say, whoAmI } = window.vezaUi;
const SVG = "http://www.w3.org/2000/svg";
const when = (iso) => new Date(iso).toLocaleString();
const FLOW_WORDS = {
  payment: "Payments received", refund: "Refunds to buyers", transfer: "Transfers to sellers",
  reversal: "Transfers taken back", payout: "Payouts", dispute: "Disputes", correction: "Corrections",
};
const flowWords = (kind) => FLOW_WORDS[kind] || kind.replace(/_/g, " ");
const ACCOUNT_WORDS = [
  [/^psp_clearing$/, "Held at the payment provider"], [/^platform_fee_revenue$/, "Platform fees earned"],
  [/^stripe_balance$/, "Platform's Stripe balance"], [/^platform_write_offs$/, "Written off"],
  [/^seller_payable:/, "Owed to seller"], [/^connected_balance:/, "Seller's Stripe account"],
];
const accountWords = (account) => {
  const found = ACCOUNT_WORDS.find(([pattern]) => pattern.test(account));
  const who = account.includes(":") ? ` ${account.split(":").slice(1).join(":")}` : "";
  return found ? `${found[1]}${who}` : account;
};

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A horizontal bar chart: one bar per row, labelled, its length the amount's share of the
// largest; negative amounts (credit balances) go left of the axis in another colour.
function barChart(rows, title) {
  const width = 640, barHeight = 22, gap = 8, labelWidth = 220, valueWidth = 110;
  const height = rows.length * (barHeight + gap) + gap + 20;
  const largest = Math.max(1, ...rows.map((r) => Math.abs(r.amount)));
  const hasNegative = rows.some((r) => r.amount < 0);
  const plot = width - labelWidth - valueWidth;
  const axis = labelWidth + (hasNegative ? plot / 2 : 0);
  const scale = (hasNegative ? plot / 2 : plot) / largest;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title });
  chart.append(svg("title", {}, title));
  rows.forEach((row, i) => {
    const y = gap + i * (barHeight + gap);
    const length = Math.max(1, Math.abs(row.amount) * scale);
    const x = row.amount < 0 ? axis - length : axis;
    chart.append(svg("text", { x: 0, y: y + barHeight * 0.7, "font-size": 13, fill: "#1d1d1f" }, row.label));
    const bar = svg("rect", { x, y, width: length, height: barHeight, rx: 3, fill: row.amount < 0 ? "#b3261e" : "#2f6fde", class: "bar" });
    bar.append(svg("title", {}, `${row.label}: ${row.text}`));
    chart.append(bar);
    chart.append(svg("text", { x: width - valueWidth + 6, y: y + barHeight * 0.7, "font-size": 13, fill: "#1d1d1f", class: "value" }, row.text));
  });
  chart.append(svg("line", { x1: axis, x2: axis, y1: 0, y2: height - 16, stroke: "#888" }));
  return chart;
}

async function loadMoney() {
  const books = await api("GET", "/api/v1/admin/money");
  const flows = books.flows.map((f) => ({ label: `${flowWords(f.kind)} (${f.currency})`, amount: f.amount, text: money(f.amount, f.currency), ...f }));
  $("flows-chart").replaceChildren(flows.length ? barChart(flows, "Money moved, by kind") : el("p", {}, "No money has moved yet."));
  $("flows").replaceChildren(...flows.map((f) => el("tr", {}, el("td", {}, flowWords(f.kind)), el("td", {}, String(f.count)), el("td", { className: "amount" }, money(f.amount, f.currency)))));
  const orders = Object.entries(books.orders).map(([status, count]) => `${count} ${status.replace(/_/g, " ")}`).join(", ");
  $("orders-summary").textContent = orders ? `Orders: ${orders}.` : "No orders yet.";
  const balances = books.balances.filter((b) => b.amount !== 0).map((b) => ({ label: accountWords(b.account), amount: b.amount, text: money(b.amount, b.currency), ...b }));
  $("balances-chart").replaceChildren(balances.length ? barChart(balances, "Balances by account") : el("p", {}, "Every account is at zero."));
  $("balances").replaceChildren(...balances.map((b) => el("tr", {}, el("td", {}, accountWords(b.account)), el("td", { className: "amount" }, money(b.amount, b.currency)))));
  const totals = {};
  for (const b of books.balances) totals[b.currency] = (totals[b.currency] || 0) + b.amount;
  const broken = Object.entries(totals).filter(([, total]) => total !== 0);
  say($("books"), broken.length ? `The books do not balance: ${broken.map(([c, t]) => money(t, c)).join(", ")} off.` : "The books balance.", broken.length ? "error" : "ok");
  return books;
}

async function loadFindings() {
  const findings = await api("GET", "/api/v1/admin/findings");
  $("findings").replaceChildren(...findings.map((f) => el("tr", {}, el("td", { className: f.severity === "critical" ? "error" : "" }, f.severity),
    el("td", {}, f.rule.replace(/_/g, " ")), el("td", {}, `${f.summary} (${f.object_type} ${f.object_id})`), el("td", {}, f.status), el("td", {}, when(f.last_seen)))));
  if (!findings.length) $("findings").append(el("tr", {}, el("td", { colSpan: 5 }, "Nothing found: the ledger agrees with the payment provider.")));
  return findings;
}

async function reconcile() {
  $("reconcile").disabled = true;
  say($("reconcile-message"), "");
  try {
    const report = await api("POST", "/api/v1/admin/reconcile", { dry_run: true });
    const examined = Object.values(report.examined || {}).reduce((a, b) => a + b, 0);  // rows per rule
    const problems = report.problem_count === 1 ? "1 problem" : `${report.problem_count} problems`;
    say($("reconcile-message"), `Checked ${examined} records against the payment provider: ${problems} found (a dry run: nothing was changed).`, report.problem_count ? "error" : "ok");
    await loadFindings();
  } catch (err) { say($("reconcile-message"), `Could not check: ${explain(err)}`, "error"); }
  finally { $("reconcile").disabled = false; }
}

async function loadWebhooks() {
  const rows = await api("GET", `/api/v1/admin/webhooks?limit=50&invalid_only=${$("invalid-only").checked}`);
  $("webhooks").replaceChildren(...rows.map((w) => el("tr", {}, el("td", {}, when(w.received_at)), el("td", {}, (w.event_type || "unknown").replace(/_/g, " ")),
    el("td", { className: w.signature_valid ? "ok" : "error" }, w.signature_valid ? "valid" : "refused"), el("td", {}, w.processing_result || ""), el("td", {}, w.source_ip || ""))));
  if (!rows.length) $("webhooks").append(el("tr", {}, el("td", { colSpan: 5 }, "No deliveries yet.")));
  return rows;
}

async function main() {
  await whoAmI();
  $("whoami").textContent = session.user || "nobody";
  if (session.role !== "admin") {
    $("gate").textContent = session.user ? "This page is for admins: your account cannot see the books."
                                         : "Log in as an admin on the main page to see this page.";
    $("gate").hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  $("panels").hidden = false;
  $("reconcile").onclick = () => reconcile();
  $("invalid-only").onchange = () => loadWebhooks().catch((e) => say($("reconcile-message"), explain(e), "error"));
  await Promise.all([loadMoney(), loadFindings(), loadWebhooks()]);
  document.body.dataset.ready = "true";
}

window.vezaAdmin = { loadMoney, loadFindings, loadWebhooks, reconcile, barChart };
main().catch((err) => { $("gate").textContent = explain(err); $("gate").hidden = false; document.body.dataset.ready = "true"; });
