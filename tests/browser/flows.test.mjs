// The people's flows in a real Chromium: a citizen on a phone books,
// reschedules and cancels; a citizen asks for a seat in a ballot release; a
// clerk and a supervisor take an application from check-in to approval; and
// another site's forms are refused.
// Run alone: `tests/browser/run` (it builds the binary and installs what is
// missing), or `node --test tests/browser/` with the binary built.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { World, totp, PASSWORD } from "./harness.mjs";

let world;

before(async () => {
  world = await World.start("flows");
});

after(async () => {
  await world?.stop();
});

/// No form post of a visit was refused (a browser's own headers pass), and
/// the browser asked no other origin for anything (manage links carry keys).
function noRefusedPost(visit) {
  const refused = visit.posts.filter((p) => p.status === 403 || p.status >= 500);
  assert.deepEqual(refused, [], "form posts answered 403 or 5xx");
  assert.ok(visit.posts.length > 0, "the visit posted forms");
  assert.deepEqual(visit.elsewhere, [], "requests to another origin");
}

async function fillPerson(page, i, p) {
  await page.locator(`#applicants-${i}-document_type`).selectOption(p.documentType);
  await page.locator(`#applicants-${i}-document_number`).fill(p.number);
  await page.locator(`#applicants-${i}-surnames`).fill(p.surnames);
  await page.locator(`#applicants-${i}-given_names`).fill(p.givenNames);
  await page.locator(`#applicants-${i}-birth_date`).fill(p.birthDate);
}

test("a citizen books for themself and a minor, reschedules, then cancels", async () => {
  const v = await world.phone("booking");
  const { page } = v;
  await v.open("/");
  assert.equal(await v.heading(), "Pida su cita para el pasaporte");

  await v.click(page.getByRole("link", { name: /^Oficina de pruebas Bogotá/ }), "calendar");
  assert.equal(await v.heading(), "Oficina de pruebas");
  const firstSlot = page.locator("a.slot").first();
  const chosenTime = (await firstSlot.locator(".t").innerText()).trim();
  await v.click(firstSlot, "book-form");
  assert.equal(await v.heading(), "Datos de la cita");

  await fillPerson(page, 0, {
    documentType: "cedula_ciudadania",
    number: "52123456",
    surnames: "Muñoz García",
    givenNames: "Ana María",
    birthDate: "1985-04-02",
  });
  await page.getByText("Agregar un menor").first().click();
  await fillPerson(page, 1, {
    documentType: "tarjeta_identidad",
    number: "1012345678",
    surnames: "Pérez Muñoz",
    givenNames: "Sofía",
    birthDate: "2014-09-12",
  });
  await page.getByLabel("Correo electrónico").fill("ana@example.co");
  await v.seen("book-form-filled");
  await v.click(page.getByRole("button", { name: "Confirmar la cita" }), "booked");

  assert.equal(await v.heading(), "Su cita");
  const code = (await page.locator("p.code").innerText()).trim();
  assert.match(code, /^[A-Z0-9-]{6,}$/, "a booking code is shown");
  let text = await v.text();
  assert.match(text, /Personas \(2\)/, "two people in the appointment");
  assert.match(text, /Ana María/);
  assert.match(text, /Sofía/);
  assert.ok(text.includes(chosenTime), `the chosen time ${chosenTime} is shown`);
  const manageUrl = page.url();
  assert.match(manageUrl, /\/citas\/.+clave=/, "the manage link carries its key");

  await v.click(page.getByRole("link", { name: "Cambiar la hora" }), "change");
  assert.equal(await v.heading(), "Cambiar la hora");
  // Another time than the one held.
  const other = page
    .locator("button.slot")
    .filter({ hasNot: page.locator(`.t:text-is("${chosenTime}")`) })
    .nth(1);
  const newTime = (await other.locator(".t").innerText()).trim();
  assert.notEqual(newTime, chosenTime);
  await v.click(other, "rescheduled");
  assert.equal(await v.heading(), "Su cita");
  text = await v.text();
  assert.ok(text.includes(newTime), `the new time ${newTime} is shown`);
  assert.ok(text.includes(code), "the same booking");

  await page.getByLabel("Sí, quiero cancelar").check();
  await v.click(page.getByRole("button", { name: "Cancelar la cita" }), "cancelled");
  text = await v.text();
  assert.match(text, /Cancelada/, "the state in words");
  assert.ok(!(await page.getByRole("button", { name: "Cancelar la cita" }).count()), "nothing left to cancel");
  noRefusedPost(v);
});

/// Today's date at the test offices (Bogotá), plus `days`, as YYYY-MM-DD.
function bogotaDay(days) {
  const d = new Date(Date.now() + days * 86_400_000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: "America/Bogota" }).format(d);
}

/// Books the `nth` free time at the test office from now on for one person
/// through the JSON API (setup, not under test); the booking's JSON.
async function bookByApi(nth, applicant) {
  const slots = await world.api("GET", "/api/v1/offices/TST/slots?days=2");
  const free = slots.json.slots.filter((s) => s.remaining > 0 && Date.parse(s.start) > Date.now() + 60_000);
  const booked = await world.api(
    "POST",
    "/api/v1/bookings",
    {
      office: "TST",
      start: free[nth].start,
      applicants: [applicant],
      email: `${applicant.document_number}@example.co`,
    },
    { "idempotency-key": `browser-${applicant.document_number}` },
  );
  assert.equal(booked.status, 201, JSON.stringify(booked.json));
  return booked.json;
}

/// Signs a staff member in through the JSON API (setup, not under test).
async function staffApi(account) {
  const r = await world.api("POST", "/api/v1/staff/session", {
    username: account.username,
    password: PASSWORD,
    totp: totp(account.secret),
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const cookie = r.headers.get("set-cookie").split(";")[0];
  return { cookie, csrf: r.json.csrf_token };
}

test("a citizen requests a seat in a ballot release and proves the email", async () => {
  const admin = world.addStaff("admin.sorteos", "administrator", "*");
  const s = await staffApi(admin);
  const release = await world.api(
    "POST",
    "/api/v1/staff/releases",
    {
      city: "Medellín",
      first_day: bogotaDay(3),
      last_day: bogotaDay(4),
      requests_close_at: new Date(Date.now() + 25 * 3_600_000).toISOString(),
    },
    { cookie: s.cookie, "x-csrf-token": s.csrf },
  );
  assert.equal(release.status, 201, JSON.stringify(release.json));

  const v = await world.phone("ballot");
  const { page } = v;
  await v.open("/");
  await v.click(page.getByRole("link", { name: /^Citas por sorteo/ }), "draws");
  assert.equal(await v.heading(), "Citas por sorteo");
  assert.match(await v.text(), /Medellín/);
  await v.click(page.getByRole("link", { name: "Solicitar una cita en este sorteo" }), "request-form");
  assert.equal(await v.heading(), "Solicitar una cita por sorteo");

  await page.getByLabel("Primera preferencia").selectOption({ label: "La primera cita en cualquier oficina de Medellín" });
  await fillPerson(page, 0, {
    documentType: "cedula_ciudadania",
    number: "1020304050",
    surnames: "Gómez López",
    givenNames: "Laura Valentina",
    birthDate: "1998-07-20",
  });
  await page.getByLabel("Correo electrónico").fill("laura@example.co");
  await v.seen("request-filled");
  await v.click(page.getByRole("button", { name: "Enviar la solicitud" }), "requested");
  assert.equal(await v.heading(), "Revise su correo");
  const code = (await v.text()).match(/Código de la solicitud:\s*(\S+)/)?.[1];
  assert.ok(code, "the request code is shown");

  // The mailed link, opened as the person would from their inbox.
  const mail = await world.mailTo("laura@example.co", new RegExp(`/solicitudes/${code}`));
  const link = mail.match(new RegExp(`https?://\\S+/solicitudes/${code}/verificar\\?clave=\\S+`))?.[0];
  assert.ok(link, `the mail carries the request's link:\n${mail}`);
  await page.goto(link);
  await v.seen("verify");
  assert.equal(await v.heading(), "Su solicitud de cita por sorteo");
  await v.click(page.getByRole("button", { name: "Confirmar mi correo" }), "verified");
  assert.match(await v.text(), /Su solicitud está en el sorteo/, "the state in words");
  noRefusedPost(v);
});

/// A portrait and a signature as a camera and a pad would give them, drawn
/// on a canvas in the browser: PNG bytes.
async function picture(page, kind) {
  const dataUrl = await page.evaluate((kind) => {
    const [w, h] = kind === "portrait" ? [600, 750] : [600, 200];
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    const g = c.getContext("2d");
    const img = g.createImageData(w, h);
    let seed = 7;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        const n = (seed >> 16) % 32;
        const i = (y * w + x) * 4;
        let rgb;
        if (kind === "portrait") {
          const d = ((x - w / 2) / (w * 0.3)) ** 2 + ((y - h * 0.45) / (h * 0.35)) ** 2;
          rgb = d < 1 ? [160 + n, 110 + n, 90 + n] : [220 + n / 2, 225 + n / 2, 230 + n / 2];
        } else {
          const wave = h / 2 + Math.sin(x / 20) * (h / 4);
          rgb = Math.abs(y - wave) < 3 && x > w / 10 && x < (w * 9) / 10 ? [10, 10, 40] : [255, 255, 255];
        }
        img.data.set([...rgb, 255], i);
      }
    }
    g.putImageData(img, 0, 0);
    return c.toDataURL("image/png");
  }, kind);
  return Buffer.from(dataUrl.split(",")[1], "base64");
}

async function signIn(v, account) {
  const { page } = v;
  await v.open("/console/sign-in");
  assert.equal(await v.heading(), "Iniciar sesión");
  await page.getByLabel("Usuario").fill(account.username);
  await page.getByLabel("Contraseña").fill(PASSWORD);
  await page.getByLabel("Código de verificación").fill(totp(account.secret));
  await v.click(page.getByRole("button", { name: "Iniciar sesión" }), "signed-in");
  assert.doesNotMatch(await v.heading(), /Iniciar sesión/, "signed in");
}

/// Reloads the page until its text matches (a worker moves the application).
async function reloadUntil(v, pattern, what) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await v.text();
    if (pattern.test(text)) return text;
    assert.ok(Date.now() < deadline, `never ${what}:\n${text}`);
    await new Promise((r) => setTimeout(r, 250));
    await v.page.reload();
  }
}

test("a clerk checks a citizen in and captures; a supervisor approves", async () => {
  const clerk = world.addStaff("ana.ventanilla", "clerk", "TST");
  const supervisor = world.addStaff("sofia.supervisora", "supervisor", "TST");
  // The citizen's booking (the citizen's own pages are the first test):
  // the first free time at the test office, which check-in accepts.
  const { code } = await bookByApi(0, {
    document_type: "cedula_ciudadania",
    document_number: "79456123",
    surnames: "Pérez Rodríguez",
    given_names: "Juan Carlos",
    birth_date: "1978-11-15",
  });

  const desk = await world.desk("clerk");
  const { page } = desk;
  await signIn(desk, clerk);
  await desk.click(page.getByRole("link", { name: /TST/ }).first(), "today");
  assert.match(await desk.heading(), /^TST · Oficina de pruebas/);
  await page.getByLabel("Código de la cita").fill(code);
  await desk.click(page.getByRole("button", { name: "Registrar llegada" }), "checked-in");
  let text = await desk.text();
  const ticket = text.match(/Turnos: (C-\S+)/)?.[1];
  assert.ok(ticket, `a ticket is given:\n${text}`);
  await page.getByLabel("Ventanilla", { exact: true }).fill("Ventanilla 3");
  await desk.click(page.getByRole("button", { name: "Llamar" }), "called");
  assert.equal(await desk.heading(), `Solicitud ${ticket}`);
  assert.match(await desk.text(), /Ventanilla 3/);

  const capture = page.locator("form[enctype='multipart/form-data']");
  await capture.getByLabel("Tipo de pasaporte").selectOption("ordinario");
  await capture.getByLabel("Apellidos").fill("Pérez Rodríguez");
  await capture.getByLabel("Nombres").fill("Juan Carlos");
  await capture.getByLabel("Fecha de nacimiento").fill("1978-11-15");
  await capture.getByLabel("Lugar de nacimiento").fill("Bogotá D.C.");
  await capture.getByLabel("Sexo").selectOption("M");
  await capture.getByLabel("Correo electrónico").fill("79456123@example.co");
  await capture.getByLabel("Foto (retrato)").setInputFiles({
    name: "retrato.png",
    mimeType: "image/png",
    buffer: await picture(page, "portrait"),
  });
  await capture.getByLabel("Firma").setInputFiles({
    name: "firma.png",
    mimeType: "image/png",
    buffer: await picture(page, "signature"),
  });
  await capture.getByLabel("Identificador del lector").fill("lector-01");
  await capture.getByLabel("Calidad").fill("85");
  await capture.getByLabel("Resumen SHA-256 de la plantilla").fill("ab".repeat(32));
  await capture.getByLabel("Dedos capturados").fill("10");
  await capture.getByLabel("Motivo", { exact: true }).selectOption("first");
  await desk.seen("capture-filled");
  await desk.click(capture.getByRole("button", { name: "Guardar la toma de datos" }), "captured");
  // The civil registry (the demo simulator) confirmed the identity and the
  // gateway gave a reference: the citizen pays it at the gateway.
  text = await reloadUntil(desk, /Pago\s+(?!sin referencia)\S+/, "given a payment reference");
  const reference = text.match(/Pago\s+(\S+)/)[1];
  const paid = await fetch(`${world.paymentsUrl}/v1/references/${encodeURIComponent(reference)}/pay`, { method: "POST" });
  assert.ok(paid.ok, `the gateway took the payment (${paid.status})`);
  await reloadUntil(desk, /pagada, por decidir/, "paid");
  await desk.seen("paid");
  const applicationUrl = page.url().split("?")[0];
  noRefusedPost(desk);

  const sup = await world.desk("supervisor");
  await signIn(sup, supervisor);
  await sup.click(sup.page.getByRole("link", { name: /TST/ }).first(), "sup-today");
  await sup.click(sup.page.getByRole("link", { name: `Abrir ${ticket}` }), "sup-application");
  assert.equal(sup.page.url().split("?")[0], applicationUrl);
  await sup.click(sup.page.getByRole("button", { name: "Aprobar la solicitud" }), "approved");
  assert.match(await sup.text(), /aprobada/, "the state in words");
  noRefusedPost(sup);
});

test("another site's form posts are refused, from a page or a sandboxed frame", async () => {
  const { code, manage_token: key } = await bookByApi(2, {
    document_type: "cedula_ciudadania",
    document_number: "71234567",
    surnames: "Restrepo Ochoa",
    given_names: "José David",
    birth_date: "1969-03-09",
  });
  const target = `${world.base}/citas/${code}/cancelar`;
  const form = `<form method="post" action="${target}"><input name="clave" value="${key}"><input name="confirmar" value="si"><button>Ganar un premio</button></form>`;
  // Another site: `localhost` is not `127.0.0.1` to a browser.
  const evil = createServer((req, res) => {
    res.setHeader("content-type", "text/html; charset=utf-8");
    if (req.url === "/frame") {
      res.end(`<!doctype html><title>x</title><iframe sandbox="allow-forms allow-scripts" srcdoc='${form.replaceAll("'", "&#39;")}'></iframe>`);
    } else {
      res.end(`<!doctype html><title>x</title>${form}`);
    }
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilBase = `http://localhost:${evil.address().port}`;
  try {
    const v = await world.phone("cross-site");
    const { page } = v;
    await page.goto(`${evilBase}/`);
    const [top] = await Promise.all([
      page.waitForResponse((r) => r.url() === target),
      page.getByRole("button", { name: "Ganar un premio" }).click(),
    ]);
    assert.equal(top.status(), 403, "a cross-site form post");
    assert.equal((await top.request().allHeaders())["sec-fetch-site"], "cross-site");
    await page.waitForLoadState("load");
    assert.match(await page.locator("body").innerText(), /otro sitio/i, "the page says why");

    await page.goto(`${evilBase}/frame`);
    const [framed] = await Promise.all([
      page.waitForResponse((r) => r.url() === target),
      page.frameLocator("iframe").getByRole("button", { name: "Ganar un premio" }).click(),
    ]);
    assert.equal(framed.status(), 403, "a sandboxed frame's form post");
    assert.equal((await framed.request().allHeaders()).origin, "null");

    const still = await world.api("GET", `/api/v1/bookings/${code}`, undefined, { authorization: `Bearer ${key}` });
    assert.equal(still.status, 200);
    assert.equal(still.json.status, "active", "the booking was not cancelled");
  } finally {
    evil.close();
  }
});
