// What the tests of the app in Arabic and Hindi share (languages.test.mjs,
// languages-people.test.mjs, languages-before-shop.test.mjs): a photograph of a screen that
// fails when the screen shows English, a message's words in a language, and waiting for the
// cart.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, ROOT } from "./harness.mjs";
import { waitForIdlePage } from "./counter-helpers.mjs";

const catalogueOf = (language) => JSON.parse(readFileSync(join(ROOT, "locales", `${language}.json`), "utf8"));
const ENGLISH = catalogueOf("en");
const CATALOGUES = { ar: catalogueOf("ar"), hi: catalogueOf("hi") };

/** The text of the message `key` in `language` ("ar", "hi"), its placeholders filled from
 * `values` (the form `other` of a message with plural forms): what a screen must show. */
export function words(language, key, values = {}) {
  const message = CATALOGUES[language][key];
  assert.ok(message !== undefined, `no message ${key} in ${language}`);
  const text = typeof message === "string" ? message : message.other;
  return text.replace(/\{([a-z_]+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
const textsOf = (message) => (typeof message === "string" ? [message] : Object.values(message));

/** What an untranslated screen would show: the English texts of `language`'s translated
 * messages, cut at their placeholders, the pieces of two words or more. */
function englishPhrases(language) {
  const translated = catalogueOf(language);
  const phrases = new Set();
  for (const [key, english] of Object.entries(ENGLISH)) {
    if (JSON.stringify(translated[key]) === JSON.stringify(english)) continue;
    for (const text of textsOf(english)) {
      for (const piece of text.split(/\{[a-z_]+\}/)) {
        const phrase = piece.trim().replace(/^[^A-Za-z]+|[^A-Za-z]+$/g, "");
        if (phrase.split(/\s+/).length >= 2 && phrase.length >= 8) phrases.add(phrase);
      }
    }
  }
  return [...phrases];
}
const PHRASES = { ar: englishPhrases("ar"), hi: englishPhrases("hi") };
/** Words of any English sentence that no Arabic or Hindi screen (or test data) needs. */
const ENGLISH_WORDS = /\b(the|is|are|was|cannot|could|not|has|have|with|from|this|that|already|must|only|there)\b/i;

/** Fails if the page, in Arabic or Hindi, shows English: an English catalogue text, or a
 * sentence with English words (built outside the catalogue). What came from elsewhere and is
 * shown as data, after a translated sentence (`[data-quoted]`: a server's reply, the browser's
 * words), is left out; everything around it is checked. */
export async function assertNoEnglish(page, name) {
  const language = name.slice(0, 2);
  const shown = await page.evaluate(() => {
    let text = document.body.innerText;
    for (const quoted of document.querySelectorAll("[data-quoted]")) text = text.replace(quoted.innerText, "");
    return text;
  });
  const left = PHRASES[language].filter((phrase) => shown.includes(phrase));
  assert.deepEqual(left, [], `${name}: English catalogue texts on the ${language} screen:\n${shown}`);
  const line = shown.split("\n").find((line) => ENGLISH_WORDS.test(line));
  assert.equal(line, undefined, `${name}: an English sentence on the ${language} screen`);
}

/** Photographs the page into e2e/artifacts/lang-{name}-800x1280.png, then checks it shows no
 * English (`name` starts with the language: "ar-sync"). */
export async function photo(page, name) {
  await waitForIdlePage(page);
  await page.screenshot({ path: join(ARTIFACTS, `lang-${name}-800x1280.png`) });
  await assertNoEnglish(page, name);
}

/** Waits until the cart has `count` lines. */
export async function waitForCartLines(page, count) {
  await page.waitForFunction(
    (count) => document.querySelectorAll("[data-testid=cart-line]").length === count,
    count,
    { timeout: 15_000 },
  );
}
