// The app configured for Cloud Firestore, against Google's emulators (issue 10): Google's
// Firestore emulator enforcing firestore.rules and the Firebase Auth emulator of firebase-tools.
// The shop's people are Auth emulator users whose shop and role are custom claims, set through
// the emulator's REST API as an admin sets them (README, "Cloud Firestore"). The app, served by
// counterbook-server under the Content-Security-Policy a Cloud Firestore tablet gets (the two
// emulators' origins as its sync endpoints), signs a cashier in with email and password through
// the Auth emulator, sells, and the sale reaches the Firestore emulator with the cashier's
// token; firestore.rules refuse that cashier's token changing a price (a manager's may); a
// token refresh, once the tablet's clock passes most of the token's hour, gets a new ID token
// from the Auth emulator that the next sale carries; and signing out with a sale pending is
// refused until confirmed. Then the admin disables the cashier: the next refresh is refused,
// the next sale waits with "Sign in again to send 1 sales", and goes once the cashier, enabled
// again, signs in again.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";

import {
  ROOT,
  launchBrowser,
  startAccountsServer,
  startAuthEmulator,
  startEmulator,
  temporaryDirectory,
} from "./harness.mjs";
import { ean13, productFields, screenshots, waitForIdlePage, waitForProductCount } from "./counter-helpers.mjs";
import { sellOne, signIn, signInOverRest, waitForPending, waitForPersonAtCounter } from "./people-helpers.mjs";

/** A demo project: the emulators need no Google account and reach nothing outside. */
const PROJECT = "demo-counterbook";
const SHOP = "s1";
const API_KEY = "fake-api-key";
const DATABASE = `projects/${PROJECT}/databases/(default)/documents`;
const CASHIER = { email: "ravi@example.com", password: "ravi-secret-1" };
const MANAGER = { email: "meena@example.com", password: "meena-secret-1" };
const SOAP = ean13("890100000001");
const SOAP_ID = "00000000-0000-7000-8000-000000000001";
/** The emulators' admin credential: it bypasses firestore.rules (seeding and reading back). */
const ADMIN = "Bearer owner";

/** A request to an emulator; its JSON reply and status. */
async function request(url, { method = "POST", token, body } = {}) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/**
 * Adds a person as the shop's admin would: the account, then the `shop` and `role` custom
 * claims (the Admin SDK's `createUser` and `setCustomUserClaims`, here the Auth emulator's REST
 * API with its admin credential).
 */
async function addPerson(auth, { email, password }, role) {
  const accounts = `${auth.url}/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts`;
  const created = await request(accounts, { token: ADMIN, body: { email, password } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const claims = JSON.stringify({ shop: SHOP, role });
  const updated = await request(`${accounts}:update`, {
    token: ADMIN,
    body: { localId: created.body.localId, customAttributes: claims },
  });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
}

/** Disables or enables a person as the admin would (`updateUser(uid, {disabled})`). */
async function setDisabled(auth, userId, disabled) {
  const updated = await request(
    `${auth.url}/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:update`,
    { token: ADMIN, body: { localId: userId, disableUser: disabled } },
  );
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
}

async function billsOnEmulator(firestore) {
  const reply = await request(`${firestore.url}/v1/${DATABASE}/shops/${SHOP}:runQuery`, {
    token: ADMIN,
    body: { structuredQuery: { from: [{ collectionId: "bills" }] } },
  });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.filter((item) => item.document).map((item) => item.document.fields);
}

describe("Cloud Firestore with Firebase Auth, on Google's emulators", () => {
  let auth;
  let firestore;
  let server;
  let browser;
  before(async () => {
    [auth, firestore, browser] = await Promise.all([
      startAuthEmulator({ project: PROJECT }),
      startEmulator({ rulesFile: join(ROOT, "firestore.rules") }),
      launchBrowser(),
    ]);
    server = await startAccountsServer({
      dataDir: temporaryDirectory("counterbook-firebase-"),
      args: ["--sync-endpoint", firestore.url, "--sync-endpoint", auth.url],
    });
    await addPerson(auth, CASHIER, "cashier");
    await addPerson(auth, MANAGER, "manager");
    const seeded = await request(`${firestore.url}/v1/${DATABASE}:commit`, {
      token: ADMIN,
      body: {
        writes: [
          {
            update: {
              name: `${DATABASE}/shops/${SHOP}/products/${SOAP_ID}`,
              fields: productFields({ name: "Lux Soap", price: 3500, barcodes: [SOAP], stock: 50 }),
            },
            updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
          },
        ],
      },
    });
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop(), auth?.stop(), firestore?.stop()]);
  });

  test("sign-in, a sale, a forged price change refused, a token refresh and sign-out refused", async () => {
    const policy = (await fetch(`${server.url}/counter`)).headers.get("content-security-policy");
    assert.match(policy, new RegExp(`connect-src 'self' ${firestore.url} ${auth.url};`));
    const tablet = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    // The tablet's clock runs as usual until the test moves it on.
    await tablet.clock.install();
    try {
      const page = await tablet.newPage();
      const refusedByPolicy = [];
      page.on("console", (message) => {
        if (/Content Security Policy|Refused to connect/.test(message.text())) refusedByPolicy.push(message.text());
      });
      const commits = [];
      page.on("request", (sent) => {
        if (sent.url().endsWith(":commit")) commits.push(sent.headers().authorization);
      });
      const settings = new URLSearchParams({
        backend: "firestore",
        endpoint: firestore.url,
        project: PROJECT,
        shop: SHOP,
        apiKey: API_KEY,
        authEndpoint: auth.url,
        lockMinutes: "0",
      });
      await page.goto(`${server.url}/counter?${settings}`);

      // Sign-in through the Auth emulator, then a sale that reaches the Firestore emulator with
      // the cashier's own ID token (the Auth emulator's, with the custom claims).
      await signIn(page, CASHIER);
      await page.getByTestId("skip-pin").click();
      await waitForPersonAtCounter(page, CASHIER.email);
      await page.getByLabel("Scan or search").waitFor();
      await waitForProductCount(page, 1);
      await waitForIdlePage(page);
      await sellOne(page, SOAP);
      await waitForPending(page, 0);
      const [sold] = await billsOnEmulator(firestore);
      assert.equal(sold.cashier.stringValue, CASHIER.email);
      const cashier = await signInOverRest(auth.url, CASHIER);
      assert.deepEqual([cashier.claims.shop, cashier.claims.role, cashier.claims.aud], [SHOP, "cashier", PROJECT]);
      const firstToken = commits.at(-1);
      const firstClaims = JSON.parse(Buffer.from(firstToken.split(".")[1], "base64url").toString());
      assert.deepEqual([firstClaims.sub, firstClaims.role], [cashier.userId, "cashier"]);
      await screenshots(page, "firebase-auth-counter");

      // A cashier's token changing a price: firestore.rules refuse it; a manager's may.
      const price = `${firestore.url}/v1/${DATABASE}/shops/${SHOP}/products/${SOAP_ID}?updateMask.fieldPaths=price`;
      const forged = { fields: { price: { integerValue: "100" } } };
      const refused = await request(price, { method: "PATCH", token: `Bearer ${cashier.idToken}`, body: forged });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.error.status, "PERMISSION_DENIED");
      const manager = await signInOverRest(auth.url, MANAGER);
      const allowed = await request(price, {
        method: "PATCH",
        token: `Bearer ${manager.idToken}`,
        body: { fields: { price: { integerValue: "3600" } } },
      });
      assert.equal(allowed.status, 200, JSON.stringify(allowed.body));

      // The tablet's clock passes 56 minutes of the token's hour: the app refreshes it with the
      // Auth emulator's Secure Token API, and the next sale carries the new ID token.
      const refreshed = page.waitForResponse((response) =>
        response.url().includes("/securetoken.googleapis.com/v1/token"),
      );
      await page.clock.fastForward("56:00");
      const reply = await refreshed;
      assert.equal(reply.status(), 200);
      const renewed = (await reply.json()).id_token;
      await sellOne(page, SOAP);
      await waitForPending(page, 0);
      assert.equal(commits.at(-1), `Bearer ${renewed}`, "the sale went with the refreshed token");
      assert.equal((await billsOnEmulator(firestore)).length, 2);

      // Offline, a sale waits; signing out is refused until confirmed. Back online, it is sent.
      await tablet.setOffline(true);
      await sellOne(page, SOAP);
      await waitForPending(page, 1);
      await page.locator('nav.pages a[href="/people"]').click();
      await page.getByTestId("sign-out").first().click();
      await page.getByTestId("confirm-leaving").waitFor();
      assert.match(await page.getByTestId("pending-warning").textContent(), /^1 change/);
      await page.getByTestId("cancel-leaving").click();
      await page.locator(`[data-testid=tablet-person][data-email="${CASHIER.email}"]`).waitFor();
      await tablet.setOffline(false);
      await waitForPending(page, 0);
      assert.equal((await billsOnEmulator(firestore)).length, 3);

      // The admin disables the cashier (the Admin SDK's updateUser({disabled: true})): the
      // next refresh is refused with USER_DISABLED, and the next sale waits, sent with no
      // token at all, until the cashier, enabled again, signs in again.
      await page.locator('nav.pages a[href="/counter"]').click();
      await page.getByLabel("Scan or search").waitFor();
      await setDisabled(auth, cashier.userId, true);
      const refusal = page.waitForResponse((response) =>
        response.url().includes("/securetoken.googleapis.com/v1/token"),
      );
      await page.clock.fastForward("56:00");
      assert.equal((await refusal).status(), 400);
      const sentBefore = commits.length;
      await page.getByTestId("sign-in-again").waitFor();
      await sellOne(page, SOAP);
      const again = page.getByTestId("sign-in-again");
      await page.waitForFunction(
        () => document.querySelector("[data-testid=sign-in-again-message]")?.textContent === "Sign in again to send 1 sales",
      );
      assert.equal(commits.length, sentBefore, "the sale waited: no commit with an ended sign-in");
      await setDisabled(auth, cashier.userId, false);
      await again.getByTestId("sign-in-password").fill(CASHIER.password);
      await again.getByTestId("sign-in-submit").click();
      await again.waitFor({ state: "detached", timeout: 30_000 });
      await waitForPending(page, 0);
      assert.equal((await billsOnEmulator(firestore)).length, 4);
      assert.deepEqual(refusedByPolicy, [], "nothing the app asked for was refused by its CSP");
    } finally {
      await tablet.close();
    }
  });
});
