// What a person does on the tablet's sign-in, PIN and lock screens, and at the counter, and what
// a test sets up and reads of a shop over REST, for the tests of people on the tablet
// (signin.test.mjs, senders.test.mjs, firebase-auth.test.mjs, approvals.test.mjs,
// bills-across-tablets.test.mjs).

import { scanWithKeyboard } from "./counter-helpers.mjs";

/** The project of counterbook-server with accounts (`startAccountsServer`). */
const PROJECT = "counterbook";

/** Signs in on the tablet's sign-in form. */
export async function signIn(page, { email, password }) {
  const form = page.getByTestId("sign-in-form");
  await form.getByTestId("sign-in-email").fill(email);
  await form.getByTestId("sign-in-password").fill(password);
  await form.getByTestId("sign-in-submit").click();
}

/** Chooses a PIN on the form that follows a first sign-in. */
export async function choosePin(page, pin) {
  await page.getByTestId("choose-pin").fill(pin);
  await page.getByTestId("save-pin").click();
  await page.getByTestId("choose-pin-form").waitFor({ state: "detached" });
}

/** Waits until the top bar names `email` as the person at the counter. */
export async function waitForPersonAtCounter(page, email) {
  await page.waitForFunction(
    (email) => document.querySelector("[data-testid=person-at-counter]")?.textContent === email,
    email,
  );
}

/** Unlocks the lock screen as `email` with `pin`. */
export async function unlockAs(page, email, pin) {
  const lock = page.getByTestId("lock-screen");
  await lock.locator(`[data-testid=lock-person][data-email="${email}"]`).click();
  await lock.getByTestId("lock-pin").fill(pin);
  await lock.getByTestId("unlock").click();
}

/** Switches to `email` with their PIN (*Switch* in the top bar). */
export async function switchTo(page, email, pin) {
  await page.getByTestId("switch-person").click();
  await unlockAs(page, email, pin);
  await page.getByTestId("lock-screen").waitFor({ state: "detached" });
  await waitForPersonAtCounter(page, email);
}

/** One sale of the product with barcode `code`, paid cash with the exact amount. */
export async function sellOne(page, code) {
  await scanWithKeyboard(page, code);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=cart-line]").length === 1);
  await page.getByRole("button", { name: "Complete sale", exact: true }).click();
  await page.getByRole("region", { name: "Receipt" }).waitFor({ timeout: 15_000 });
  await page.getByRole("button", { name: "New sale", exact: true }).click();
  await page.getByRole("region", { name: "Receipt" }).waitFor({ state: "detached" });
}

/** Waits until the header's badge counts `count` units waiting. */
export async function waitForPending(page, count, timeout = 30_000) {
  try {
    await page.waitForFunction(
      (count) => document.querySelector("[data-testid=pending-count]")?.textContent === String(count),
      count,
      { timeout },
    );
  } catch (error) {
    const shown = await page.evaluate(() => document.querySelector("[data-testid=sync-badge]")?.textContent);
    throw new Error(`waiting for ${count} pending, the badge says ${JSON.stringify(shown)}: ${error.message}`);
  }
}

/**
 * Signs in over Firebase Auth's REST API at `authBase` (counterbook-server's origin or the
 * Auth emulator's), as a test's own client, not the app: the ID token, refresh token, user id
 * and the token's claims.
 */
export async function signInOverRest(authBase, { email, password }) {
  const response = await fetch(
    `${authBase}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=k`,
    {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password, returnSecureToken: true }),
    },
  );
  const text = await response.text();
  if (response.status !== 200) throw new Error(`sign-in of ${email}: ${response.status} ${text}`);
  const body = JSON.parse(text);
  const claims = JSON.parse(Buffer.from(body.idToken.split(".")[1], "base64url").toString());
  return {
    idToken: body.idToken,
    refreshToken: body.refreshToken,
    userId: body.localId,
    shop: claims.shop,
    claims,
  };
}

/** A request to counterbook-server at `baseUrl` as `person` (signed in first); its JSON reply. */
export async function asPerson(baseUrl, person, method, path, body) {
  const { idToken } = await signInOverRest(baseUrl, person);
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${idToken}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/**
 * Sets up a shop on counterbook-server with accounts over REST: the claim "Set up your shop"
 * sends (with its shop id chosen), then as `owner` the shop's `people` (`{ email, password,
 * displayName, role }`) and `products` (`{ id, fields }`, fields from `productFields`).
 */
export async function setUpShopOverRest(server, { shop, shopName, owner, ownerName, people = [], products = [] }) {
  const claimed = await fetch(`${server.url}/counterbook/v1/setup:claim`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      setupCode: server.setupCode,
      shopName,
      currency: "INR",
      country: "IN",
      locale: "en-IN",
      displayName: ownerName,
      shopId: shop,
      ...owner,
    }),
  });
  if (claimed.status !== 200) throw new Error(`setup:claim: ${claimed.status} ${await claimed.text()}`);
  for (const person of people) {
    await asPerson(server.url, owner, "POST", `/counterbook/v1/shops/${shop}/people`, person);
  }
  if (products.length === 0) return;
  const database = `projects/${PROJECT}/databases/(default)/documents`;
  await asPerson(server.url, owner, "POST", `/v1/${database}:commit`, {
    writes: products.map(({ id, fields }) => ({
      update: { name: `${database}/shops/${shop}/products/${id}`, fields },
      updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
    })),
  });
}

/** The bills of `shop` on counterbook-server, read as `owner`: their numbers and who sold them. */
export async function billsOnServer(server, owner, shop) {
  const database = `projects/${PROJECT}/databases/(default)/documents`;
  const items = await asPerson(server.url, owner, "POST", `/v1/${database}/shops/${shop}:runQuery`, {
    structuredQuery: { from: [{ collectionId: "bills" }] },
  });
  return items
    .filter((item) => item.document)
    .map((item) => ({
      number: item.document.fields.number.stringValue,
      cashier: item.document.fields.cashier?.stringValue,
    }));
}

/** A request to counterbook-server as the bearer of `token` (or of none): its status and JSON reply. */
export async function rest(server, method, path, { token, body } = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/**
 * What a test reads of `shop` on counterbook-server with `token` (the owner's): a document's
 * fields (`getDocument("bills/b1")`), the fields of a collection's documents (`query("refunds")`)
 * and a product's stock (`stockOf({ id })`).
 */
export function shopReads(server, shop, token) {
  const database = `projects/${PROJECT}/databases/(default)/documents`;
  async function getDocument(path) {
    const { status, body } = await rest(server, "GET", `/v1/${database}/shops/${shop}/${path}`, { token });
    if (status !== 200) throw new Error(`${path}: ${status} ${JSON.stringify(body)}`);
    return body.fields;
  }
  async function query(collectionId) {
    const { body } = await rest(server, "POST", `/v1/${database}/shops/${shop}:runQuery`, {
      token,
      body: { structuredQuery: { from: [{ collectionId }] } },
    });
    return body.map((item) => item.document?.fields).filter(Boolean);
  }
  const stockOf = async (product) => Number((await getDocument(`products/${product.id}`)).stock.integerValue);
  return { getDocument, query, stockOf };
}

/**
 * Two people on the tablet, each signed in once with a PIN: `first`, then `second`, added on
 * the people page ("Add a person to this tablet"), who stays at the counter; back on the
 * counter page.
 */
export async function signInTwoPeople(page, [first, firstPin], [second, secondPin]) {
  await signIn(page, first);
  await choosePin(page, firstPin);
  await waitForPersonAtCounter(page, first.email);
  await page.locator('nav.pages a[href="/people"]').click();
  await page.getByTestId("add-tablet-person").click();
  await signIn(page, second);
  await choosePin(page, secondPin);
  await waitForPersonAtCounter(page, second.email);
  await page.locator('nav.pages a[href="/counter"]').click();
}
