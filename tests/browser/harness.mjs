// The browser tests' world: the real `pasaporte` binary on a scratch SQLite
// database (demo simulators in-process, a test office open around the clock),
// staff accounts made with the real CLI, a reverse proxy in front of it (its
// own Host forwarded, X-Forwarded-For appended), and Debian's Chromium driven by
// playwright-core on a phone-sized screen, with axe-core run on every page.

import { spawn, execFileSync } from "node:child_process";
import { createServer, request } from "node:http";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { SMTPServer } from "smtp-server";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const PASSWORD = "caballo cuaderno lluvia tenaz";
const DATA_KEYS = "k1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const LOOKUP_KEY = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// An office open around the clock, so that a slot within check-in's two
/// hours exists whatever the hour CI runs at; and one in another city for the
/// ballot release.
const TEST_OFFICES_CSV = `code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days
TST,Oficina de pruebas,ministry,Bogotá,COL,America/Bogota,00:00-24:00,00:00-24:00,50,2400,00:00-24:00,30,30,60
TS2,Oficina de pruebas 2,department,Medellín,COL,America/Bogota,00:00-24:00,00:00-24:00,50,2400,00:00-24:00,30,30,60
`;

function binary() {
  const bin = process.env.PASAPORTE_BIN ?? join(repo, "target", "debug", "pasaporte");
  try {
    execFileSync(bin, ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error(`${bin} does not run: build it first (cargo build -p pasaporte), or set PASAPORTE_BIN`);
  }
  return bin;
}

function chromiumPath() {
  for (const p of [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (!p) continue;
    try {
      execFileSync(p, ["--version"], { stdio: "ignore" });
      return p;
    } catch {
      // try the next
    }
  }
  throw new Error("Chromium not found: install it (Debian: apt-get install chromium), or set CHROMIUM_PATH");
}

/// RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret at `t` seconds.
export function totp(secretBase32, t = Date.now() / 1000) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secretBase32.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

export class World {
  /// Starts the service on a scratch database with the test offices loaded.
  static async start(name) {
    const w = new World();
    w.dir = mkdtempSync(join(tmpdir(), `pasaporte-browser-${name}-`));
    w.shots = join(w.dir, "screenshots");
    mkdirSync(w.shots);
    w.bin = binary();
    w.env = {
      ...process.env,
      PASAPORTE_DATABASE: join(w.dir, "pasaporte.db"),
      PASAPORTE_DATA_KEYS: DATA_KEYS,
      PASAPORTE_LOOKUP_KEY: LOOKUP_KEY,
      PASAPORTE_LOG: "warn",
      PASAPORTE_STAFF_PASSWORD: PASSWORD,
    };
    writeFileSync(join(w.dir, "offices.csv"), TEST_OFFICES_CSV);
    w.cli(["migrate"]);
    w.cli(["offices", "import", join(w.dir, "offices.csv")]);
    // Medellín's test office gives its online seats by ballot.
    w.cli(["offices", "policy", "--office", "TS2", "--mode", "ballot", "--online", "70", "--urgent", "5", "--walk-in", "15", "--priority", "10"]);
    await w.startMailbox();
    await w.serve();
    w.browser = await chromium.launch({
      executablePath: chromiumPath(),
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    console.log(`# ${name}: screenshots in ${w.shots}`);
    return w;
  }

  /// Runs the real command line against this world's database; its stdout.
  cli(args) {
    return execFileSync(this.bin, args, { env: this.env, cwd: this.dir, encoding: "utf8" });
  }

  /// A staff account: its TOTP secret, as `pasaporte staff add` prints it once.
  addStaff(username, role, office) {
    const out = this.cli(["staff", "add", "--username", username, "--role", role, "--office", office]);
    const m = out.match(/TOTP secret \(base32, shown once\): ([A-Z2-7]+)/);
    assert.ok(m, `no TOTP secret in: ${out}`);
    return { username, secret: m[1] };
  }

  /// A real SMTP server on loopback that keeps every message it is given.
  async startMailbox() {
    this.mail = [];
    this.smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks = [];
        stream.on("data", (c) => chunks.push(c));
        stream.on("end", () => {
          this.mail.push({
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString("utf8"),
          });
          callback();
        });
      },
    });
    await new Promise((resolve) => this.smtp.listen(0, "127.0.0.1", resolve));
    this.smtpPort = this.smtp.server.address().port;
  }

  /// The text of the first message to `address` whose text matches
  /// `pattern`, waiting for the outbox to send it (quoted-printable undone).
  async mailTo(address, pattern, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.mail) {
        if (!m.to.includes(address)) continue;
        const text = m.raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
        const decoded = Buffer.from(text, "latin1").toString("utf8");
        if (pattern.test(decoded)) return decoded;
      }
      if (Date.now() > deadline) throw new Error(`no mail to ${address} matching ${pattern} (${this.mail.length} received)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /// The service behind a reverse proxy, as every deployment runs it: the
  /// proxy forwards its own Host (nginx's default `proxy_pass`) and appends
  /// the peer to X-Forwarded-For; the service knows its public address
  /// (`--public-url`) and believes the proxy's header (`--trusted-proxies`).
  /// Everything the browser does goes through the proxy.
  async startProxy() {
    this.proxy = createServer((req, res) => {
      const up = new URL(this.upstream);
      const prior = req.headers["x-forwarded-for"];
      const peer = req.socket.remoteAddress;
      const headers = { ...req.headers, host: up.host, "x-forwarded-for": prior ? `${prior}, ${peer}` : peer };
      const out = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      out.on("error", (e) => {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`proxy: ${e}`);
      });
      req.pipe(out);
    });
    await new Promise((resolve) => this.proxy.listen(0, "127.0.0.1", resolve));
    this.proxyUrl = `http://127.0.0.1:${this.proxy.address().port}`;
  }

  async serve() {
    await this.startProxy();
    const smtp = ["--smtp-host", "127.0.0.1", "--smtp-port", String(this.smtpPort), "--smtp-security", "none"];
    const proxied = ["--public-url", this.proxyUrl, "--trusted-proxies", "127.0.0.1"];
    this.server = spawn(this.bin, ["serve", "--demo", "--listen", "127.0.0.1:0", ...smtp, ...proxied], {
      env: this.env,
      cwd: this.dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.serverLog = "";
    const lines = [];
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service did not start:\n${this.serverLog}`)), 30_000);
      const read = (chunk) => {
        this.serverLog += chunk;
        lines.push(...chunk.toString().split("\n"));
        for (const l of lines) {
          const pay = l.match(/demo payment simulator on (\S+)/);
          if (pay) this.paymentsUrl = pay[1];
          const up = l.match(/pasaporte listening on (\S+)/);
          if (up) this.base = up[1];
        }
        if (this.base && this.paymentsUrl) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.server.stdout.on("data", read);
      this.server.stderr.on("data", (c) => (this.serverLog += c));
      this.server.on("exit", (code) => reject(new Error(`the service exited (${code}):\n${this.serverLog}`)));
    });
    await ready;
    this.upstream = this.base;
    this.base = this.proxyUrl;
  }

  /// A phone-sized page (390 × 844, touch), in Spanish as a Colombian phone is.
  async phone(who) {
    const context = await this.browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
      locale: "es-CO",
    });
    return new Visit(this, await context.newPage(), who);
  }

  /// A counter's screen.
  async desk(who) {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "es-CO" });
    return new Visit(this, await context.newPage(), who);
  }

  /// A JSON API call (setup that is not the point of a test).
  async api(method, path, body, headers = {}) {
    const r = await fetch(this.base + path, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: r.status, json, headers: r.headers };
  }

  async stop() {
    await this.browser?.close();
    this.server?.kill("SIGTERM");
    this.smtp?.close();
    this.proxy?.close();
  }
}

/// One person's tab: every page it lands on is photographed and checked
/// with axe-core.
export class Visit {
  constructor(world, page, who) {
    this.world = world;
    this.who = who;
    this.page = page;
    this.step = 0;
    this.posts = [];
    this.elsewhere = [];
    page.on("request", (r) => {
      const url = r.url();
      if (!url.startsWith(this.world.base + "/") && !url.startsWith("data:")) this.elsewhere.push(url);
    });
    // The page's own document (after redirects) and what the browser's
    // Content-Security-Policy refused on it: each seen page must carry the
    // headers and break none of them.
    this.document = null;
    this.refused = [];
    page.on("response", (r) => {
      if (r.request().method() === "POST") this.posts.push({ url: r.url(), status: r.status() });
      if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) this.document = r;
    });
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) this.refused.push(m.text());
    });
  }

  async open(path) {
    const r = await this.page.goto(this.world.base + path);
    assert.equal(r.status(), 200, `GET ${path}`);
    await this.seen("open");
  }

  /// A screenshot of what the person sees now, and the page's axe findings
  /// (none critical or serious allowed).
  async seen(what) {
    this.step += 1;
    const file = join(this.world.shots, `${this.who}-${String(this.step).padStart(2, "0")}-${what}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    assert.ok(this.document, `a document for ${what}`);
    const headers = await this.document.allHeaders();
    const csp = headers["content-security-policy"] ?? "";
    for (const part of [
      "default-src 'none'",
      "img-src 'self' data:",
      "style-src 'self' 'unsafe-inline'",
      "form-action 'self'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ]) {
      assert.ok(csp.includes(part), `${this.page.url()}: Content-Security-Policy ${JSON.stringify(csp)} lacks ${part}`);
    }
    assert.equal(headers["x-frame-options"], "DENY", `${this.page.url()}: X-Frame-Options`);
    assert.deepEqual(this.refused, [], `${this.page.url()}: refused by the Content-Security-Policy`);
    // Through the DevTools protocol, which the page's policy does not
    // govern (a <script> tag would be refused, as it should be).
    await this.page.evaluate(AXE_SOURCE);
    const result = await this.page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ["violations"] }),
    );
    const bad = result.violations.filter((v) => v.impact === "critical" || v.impact === "serious");
    assert.deepEqual(
      bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
      [],
      `axe on ${this.page.url()} (screenshot ${file})`,
    );
  }

  /// Clicks what a person clicks and waits for the page it leads to.
  async click(locator, what) {
    await Promise.all([this.page.waitForLoadState("load"), locator.click()]);
    await this.page.waitForLoadState("load");
    await this.seen(what);
  }

  async heading() {
    return (await this.page.locator("h1").first().innerText()).trim();
  }

  async text() {
    return this.page.locator("main, body").first().innerText();
  }
}
