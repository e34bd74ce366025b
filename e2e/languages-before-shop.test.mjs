// The screens before the shop in Arabic and Hindi (issue 10, Languages): setting up the shop
// (a bad currency and a wrong setup code answered in Arabic), choosing a PIN, the lock screen
// (a wrong PIN) and signing someone else in from it in Arabic with `dir="rtl"`; signing in (a
// wrong password answered in Hindi), choosing a PIN (one too short), the lock screen a tablet
// starts with, the idle lock, and "Sign in again" after a cashier's sign-in ended, in Hindi;
// each photographed at 800×1280 into e2e/artifacts/lang-*.png. Its own file, with its own
// browser: after languages.test.mjs's sale in the same browser, the claim here waited past the
// test's timeout on a loaded machine.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ARTIFACTS, launchBrowser, startAccountsServer, temporaryDirectory } from "./harness.mjs";
import { waitForIdlePage } from "./counter-helpers.mjs";
import { asPerson, signIn, signInOverRest, unlockAs } from "./people-helpers.mjs";

const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const CASHIER = { email: "cashier@example.com", password: "cashier-secret-1" };
/** ID tokens live this long: a cashier's ended sign-in is noticed at the next refresh. */
const TOKEN_SECONDS = 4;

async function photo(page, name) {
  await waitForIdlePage(page);
  await page.screenshot({ path: join(ARTIFACTS, `lang-${name}-800x1280.png`) });
}

function documentLanguage(page) {
  return page.evaluate(() => ({
    lang: document.documentElement.lang,
    dir: document.documentElement.dir,
  }));
}

describe("languages before the shop", () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test("the screens before the shop, in Arabic and Hindi", async () => {
    const accounts = await startAccountsServer({
      dataDir: temporaryDirectory("counterbook-lang-accounts-"),
      tokenLifetimeSeconds: TOKEN_SECONDS,
    });
    const arabic = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    const hindi = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    const cashierTablet = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      const page = await arabic.newPage();
      await page.goto(`${accounts.url}/counter?language=ar&lockMinutes=0`);
      const setup = page.getByTestId("setup-form");
      await setup.waitFor();
      assert.deepEqual(await documentLanguage(page), { lang: "ar", dir: "rtl" });
      assert.ok((await setup.innerText()).includes("أنشئ متجرك"));
      await photo(page, "ar-setup");
      await setup.getByTestId("setup-shop-name").fill("متجر الأمل");
      await setup.getByTestId("setup-display-name").fill("أمل");
      await setup.getByTestId("setup-email").fill(OWNER.email);
      await setup.getByTestId("setup-password").fill(OWNER.password);
      await setup.getByTestId("setup-code").fill("AAAA-BBBB-CCCC");
      // A field the server refuses is named in Arabic (it used to show the server's English).
      await setup.getByTestId("setup-currency").fill("RS");
      await setup.getByTestId("setup-submit").click();
      await page.getByTestId("setup-error").waitFor();
      assert.equal(await page.getByTestId("setup-error").textContent(), "العملة رمز من ثلاثة أحرف كبيرة، مثل INR.");
      await photo(page, "ar-setup-bad-currency");
      await setup.getByTestId("setup-currency").fill("INR");
      await setup.getByTestId("setup-submit").click();
      await page.getByTestId("setup-error").filter({ hasText: "رمز الإعداد" }).waitFor();
      assert.equal(await page.getByTestId("setup-error").textContent(), "رمز الإعداد غير صحيح. تجده في سجل الخادم.");
      await photo(page, "ar-setup-wrong-code");
      // The claimed shop is another than the tablet was opened for: the app starts again on
      // it, and only then asks for a PIN. (It used to show "Choose your PIN" first and reload
      // under it: the test's next evaluate met the reload, and closing the browser context
      // while its page navigated hung Chromium's disposeBrowserContext, past the file's
      // timeout, hiding the error.) The page before the claim notes in sessionStorage, which
      // outlives the reload, whether it ever showed the PIN form.
      await page.evaluate(() => {
        window.beforeTheClaim = true;
        new MutationObserver(() => {
          if (document.querySelector("[data-testid=choose-pin-form]")) {
            sessionStorage.setItem("choose-pin-before-restart", "shown");
          }
        }).observe(document.body, { childList: true, subtree: true });
      });
      await setup.getByTestId("setup-code").fill(accounts.setupCode);
      await setup.getByTestId("setup-submit").click();
      await page.getByTestId("choose-pin-form").waitFor({ timeout: 30_000 });
      assert.deepEqual(
        await page.evaluate(() => ({
          restarted: window.beforeTheClaim === undefined,
          pinFormBeforeRestart: sessionStorage.getItem("choose-pin-before-restart"),
        })),
        { restarted: true, pinFormBeforeRestart: null },
        "Choose your PIN is asked only on the page started again for the new shop",
      );
      assert.equal((await documentLanguage(page)).dir, "rtl");
      await photo(page, "ar-choose-pin");
      await page.getByTestId("choose-pin").fill("1111");
      await page.getByTestId("save-pin").click();
      await page.getByTestId("choose-pin-form").waitFor({ state: "detached" });
      await page.getByTestId("switch-person").click();
      await page.getByTestId("lock-screen").waitFor();
      await photo(page, "ar-lock");
      await unlockAs(page, OWNER.email, "9999");
      await page.getByTestId("lock-error").waitFor();
      assert.equal(await page.getByTestId("lock-error").textContent(), "الرمز السري غير صحيح.");
      await photo(page, "ar-lock-wrong-pin");
      await page.getByTestId("lock-add-person").click();
      await page.getByTestId("sign-in-form").waitFor();
      assert.ok((await page.getByTestId("sign-in-form").innerText()).includes("تسجيل دخول شخص آخر على هذا الجهاز"));
      await photo(page, "ar-sign-in-someone-else");

      const other = await hindi.newPage();
      await other.goto(`${accounts.url}/counter?language=hi`);
      await other.getByTestId("sign-in-form").waitFor();
      assert.deepEqual(await documentLanguage(other), { lang: "hi", dir: "ltr" });
      await photo(other, "hi-sign-in");
      await signIn(other, { email: OWNER.email, password: "wrong-password" });
      await other.getByTestId("sign-in-error").waitFor();
      assert.equal(await other.getByTestId("sign-in-error").textContent(), "ईमेल या पासवर्ड गलत है।");
      await photo(other, "hi-sign-in-wrong-password");
      // The right password: the app starts again on the owner's shop and asks for a PIN.
      await signIn(other, OWNER);
      const choosePin = other.getByTestId("choose-pin-form");
      await choosePin.waitFor({ timeout: 30_000 });
      await other.getByTestId("choose-pin").fill("12");
      await other.getByTestId("save-pin").click();
      await choosePin.getByRole("alert").waitFor();
      assert.equal(await choosePin.getByRole("alert").textContent(), "PIN 4 से 6 अंकों का होता है।");
      await photo(other, "hi-choose-pin-too-short");
      await other.getByTestId("choose-pin").fill("2222");
      await other.getByTestId("save-pin").click();
      await choosePin.waitFor({ state: "detached" });
      await other.close();

      // Opened again with a lock time of 3 s: it starts locked, and locks again when idle.
      const locking = await hindi.newPage();
      await locking.goto(`${accounts.url}/counter?language=hi&lockMinutes=0.05`);
      await locking.getByTestId("lock-screen").waitFor();
      assert.ok((await locking.getByTestId("lock-screen").innerText()).includes("काउंटर पर कौन है?"));
      await photo(locking, "hi-lock");
      await unlockAs(locking, OWNER.email, "2222");
      await locking.getByTestId("lock-screen").waitFor({ state: "detached" });
      await locking.getByTestId("lock-screen").waitFor({ timeout: 15_000 });
      await photo(locking, "hi-idle-lock");

      // A cashier alone on a tablet: when her sign-in ends (disabled and enabled again by the
      // owner), the tablet asks her to sign in again, in Hindi.
      const { shop } = await signInOverRest(accounts.url, OWNER);
      await asPerson(accounts.url, OWNER, "POST", `/counterbook/v1/shops/${shop}/people`, {
        ...CASHIER,
        displayName: "रवि",
        role: "cashier",
      });
      const cashierPage = await cashierTablet.newPage();
      await cashierPage.goto(`${accounts.url}/counter?language=hi&lockMinutes=0`);
      await signIn(cashierPage, CASHIER);
      await cashierPage.getByTestId("skip-pin").click();
      await cashierPage.getByTestId("person-at-counter").filter({ hasText: CASHIER.email }).waitFor();
      const { people } = await asPerson(accounts.url, OWNER, "GET", `/counterbook/v1/shops/${shop}/people`);
      const cashierId = people.find((person) => person.email === CASHIER.email).userId;
      for (const disabled of [true, false]) {
        await asPerson(accounts.url, OWNER, "PATCH", `/counterbook/v1/shops/${shop}/people/${cashierId}`, { disabled });
      }
      await cashierPage.getByTestId("sign-in-again").waitFor({ timeout: 30_000 });
      assert.equal(
        await cashierPage.getByTestId("sign-in-again-message").textContent(),
        "इस टैबलेट को सिंक में रखने के लिए फिर से साइन इन करें",
      );
      await photo(cashierPage, "hi-sign-in-again");
    } catch (error) {
      // Said before the contexts close: a close can hang if a page is navigating.
      console.error(error);
      throw error;
    } finally {
      await Promise.all([arabic.close(), hindi.close(), cashierTablet.close()]);
      await accounts.stop();
    }
  });
});
