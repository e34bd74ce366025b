// The official Firebase JS SDK Lite (`@firebase/firestore/lite`, connected with
// `connectFirestoreEmulator`) against counterbook-server and against Google's Firestore emulator.
// Each scenario runs unchanged on both backends, asserts what the SDK shows, and returns a
// normalized outcome; a last test per scenario requires the two outcomes to be identical, so a
// difference the explicit assertions do not name still fails.
//
// What Lite sends: getDoc and transaction reads are `:batchGet`; getDocs is `:runQuery`;
// getCount (Lite's name for getCountFromServer)
// and getAggregate are `:runAggregationQuery`; setDoc, updateDoc, deleteDoc, writeBatch and the
// transaction's commit are `:commit` (a transaction adds `verify` writes with `updateTime` or
// `exists: false` preconditions for what it read and did not write; Lite never calls
// `:beginTransaction`).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { deleteApp, initializeApp } from "@firebase/app";
import {
  Bytes,
  GeoPoint,
  Timestamp,
  and,
  arrayRemove,
  arrayUnion,
  collection,
  connectFirestoreEmulator,
  deleteDoc,
  deleteField,
  doc,
  DocumentReference,
  average,
  count,
  getAggregate,
  getCount,
  sum,
  getDoc,
  getDocs,
  getFirestore,
  increment,
  limit,
  or,
  orderBy,
  query,
  runTransaction,
  serverTimestamp,
  setDoc,
  startAfter,
  updateDoc,
  where,
  writeBatch,
} from "@firebase/firestore/lite";
import { startEmulator, startServer, temporaryDirectory } from "./harness.mjs";

const BACKENDS = ["counterbook-server", "firestore-emulator"];
const SHOP = "shops/lite-1";

/** Plain JSON for what the SDK returns: Timestamps, GeoPoints, Bytes and references spelled out. */
function plain(value) {
  if (value instanceof Timestamp) return { timestamp: [value.seconds, value.nanoseconds] };
  if (value instanceof GeoPoint) return { geoPoint: [value.latitude, value.longitude] };
  if (value instanceof Bytes) return { bytes: value.toBase64() };
  if (value instanceof DocumentReference) return { reference: value.path };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, plain(value[key])]),
    );
  }
  return value;
}

/**
 * Asserts that `value` is a Timestamp the server set during this test (the backends run on this
 * machine, so their clocks are ours) and returns a placeholder that compares equal across them.
 */
function serverTime(value, startedAtMillis) {
  assert.ok(value instanceof Timestamp, `a server timestamp, got ${JSON.stringify(value)}`);
  const millis = value.toMillis();
  assert.ok(
    millis >= startedAtMillis - 5_000 && millis <= Date.now() + 5_000,
    `server time ${value.toDate().toISOString()} is not around now`,
  );
  return "<server time>";
}

/** The FirebaseError code (`not-found`, `already-exists`, ...) that `promise` rejects with. */
async function errorCode(promise) {
  try {
    await promise;
  } catch (error) {
    return error.code ?? `not a FirestoreError: ${error}`;
  }
  return "resolved";
}

async function dataOf(reference) {
  const snapshot = await getDoc(reference);
  return snapshot.exists() ? plain(snapshot.data()) : "missing";
}

const SCENARIOS = {
  "setDoc and getDoc round-trip every value type; getDoc of a missing document": async (db) => {
    const reference = doc(db, SHOP, "values", "all");
    const written = {
      text: "Parle-G 250g",
      integer: 42,
      negative: -7,
      double: 12.5,
      yes: true,
      nothing: null,
      when: new Timestamp(1_700_000_000, 123_456_000),
      where: new GeoPoint(28.61, 77.2),
      raw: Bytes.fromUint8Array(new Uint8Array([0, 1, 254, 255])),
      link: doc(db, SHOP, "products", "p1"),
      list: [1, "two", { three: 3 }],
      nested: { deeper: { deepest: "ok" }, empty: {} },
      emptyList: [],
    };
    await setDoc(reference, written);
    const snapshot = await getDoc(reference);
    assert.ok(snapshot.exists());
    assert.deepEqual(plain(snapshot.data()), plain(written));
    const missing = await getDoc(doc(db, SHOP, "values", "never-written"));
    assert.equal(missing.exists(), false);
    assert.equal(missing.data(), undefined);
    return { data: plain(snapshot.data()), missing: missing.exists() };
  },

  "setDoc with merge and mergeFields": async (db) => {
    const reference = doc(db, SHOP, "customers", "c1");
    await setDoc(reference, { name: "Asha", phone: "98100", credit: { balance: 100, limit: 500 } });
    await setDoc(reference, { credit: { limit: 900 }, city: "Delhi" }, { merge: true });
    const merged = await dataOf(reference);
    assert.deepEqual(merged, {
      city: "Delhi",
      credit: { balance: 100, limit: 900 },
      name: "Asha",
      phone: "98100",
    });
    await setDoc(reference, { name: "Asha K", phone: "ignored", city: "ignored too" }, {
      mergeFields: ["name"],
    });
    const masked = await dataOf(reference);
    assert.deepEqual(masked, { ...merged, name: "Asha K" });
    // A merge that creates the document, with transforms and a field delete.
    const created = doc(db, SHOP, "customers", "c2");
    const startedAt = Date.now();
    await setDoc(
      created,
      { visits: increment(2), updatedAt: serverTimestamp(), gone: deleteField() },
      { merge: true },
    );
    const fresh = (await getDoc(created)).data();
    assert.equal(fresh.visits, 2);
    assert.equal("gone" in fresh, false);
    const updatedAt = serverTime(fresh.updatedAt, startedAt);
    return { merged, masked, created: { visits: fresh.visits, updatedAt } };
  },

  "updateDoc with serverTimestamp, increment, arrayUnion and dotted paths": async (db) => {
    const reference = doc(db, SHOP, "products", "p1");
    await setDoc(reference, {
      name: "Tata Salt 1kg",
      stock: 10,
      weight: 1.5,
      label: "not a number",
      tags: ["grocery", "salt"],
      price: { amount: 2800, currency: "INR" },
    });
    const startedAt = Date.now();
    await updateDoc(reference, {
      updatedAt: serverTimestamp(),
      stock: increment(-3),
      weight: increment(1),
      mixed: increment(0.5),
      label: increment(5),
      fresh: increment(1),
      tags: arrayUnion("salt", "iodised", "grocery", "offer"),
      newTags: arrayUnion("a", "a", "b"),
      "price.amount": 2900,
    });
    const data = (await getDoc(reference)).data();
    const updatedAt = serverTime(data.updatedAt, startedAt);
    const rest = plain({ ...data, updatedAt });
    assert.deepEqual(rest, {
      fresh: 1,
      label: 5,
      mixed: 0.5,
      name: "Tata Salt 1kg",
      newTags: ["a", "b"],
      price: { amount: 2900, currency: "INR" },
      stock: 7,
      tags: ["grocery", "salt", "iodised", "offer"],
      updatedAt: "<server time>",
      weight: 2.5,
    });
    // Two increments in a row count twice; an integer plus a double becomes a double.
    await updateDoc(reference, { stock: increment(2) });
    await updateDoc(reference, { stock: increment(2.25) });
    const after = (await getDoc(reference)).data();
    assert.equal(after.stock, 11.25);
    // Only the transform sets `updatedAt`: later writes without it leave it as it was.
    assert.equal(after.updatedAt.isEqual(data.updatedAt), true);
    return { rest, stock: after.stock };
  },

  "updateDoc with arrayRemove and deleteField": async (db) => {
    const reference = doc(db, SHOP, "products", "p2");
    await setDoc(reference, { tags: ["a", "b", "a", "c", 1, { x: 1 }], note: "remove me" });
    await updateDoc(reference, { tags: arrayRemove("a", { x: 1 }, "zzz"), note: deleteField() });
    const data = await dataOf(reference);
    assert.deepEqual(data, { tags: ["b", "c", 1] });
    return data;
  },

  "updateDoc and deleteDoc of missing documents": async (db) => {
    const missing = doc(db, SHOP, "products", "nowhere");
    const updateMissing = await errorCode(updateDoc(missing, { stock: 1 }));
    assert.equal(updateMissing, "not-found");
    assert.equal(await dataOf(missing), "missing", "a failed update creates nothing");
    await deleteDoc(missing); // Deleting a missing document succeeds.
    const reference = doc(db, SHOP, "products", "p3");
    await setDoc(reference, { name: "Amul Butter" });
    await deleteDoc(reference);
    assert.equal(await dataOf(reference), "missing");
    return { updateMissing, afterDelete: await dataOf(reference) };
  },

  "getDocs with filters, orders, limits and cursors": async (db) => {
    const products = collection(db, SHOP, "catalogue");
    const rows = [
      ["a", { name: "Atta 5kg", price: 24000, category: "staples", tags: ["wheat"] }],
      ["b", { name: "Biscuits", price: 1000, category: "snacks", tags: ["sweet", "tea"] }],
      ["c", { name: "Chips", price: 2000, category: "snacks", tags: ["salty"] }],
      ["d", { name: "Dal 1kg", price: 14000, category: "staples", tags: [] }],
      ["e", { name: "Eggs (6)", price: 4200, category: "dairy" }],
    ];
    for (const [id, data] of rows) await setDoc(doc(products, id), data);
    const ids = async (...constraints) =>
      (await getDocs(query(products, ...constraints))).docs.map((snapshot) => snapshot.id);

    const outcome = {
      all: await ids(),
      snacks: await ids(where("category", "==", "snacks")),
      cheapFirst: await ids(orderBy("price"), limit(3)),
      dearFirst: await ids(orderBy("price", "desc"), limit(2)),
      range: await ids(where("price", ">=", 2000), where("price", "<", 20000)),
      notSnacks: await ids(where("category", "!=", "snacks")),
      tagged: await ids(where("tags", "array-contains", "tea")),
      anyTag: await ids(where("tags", "array-contains-any", ["salty", "wheat"])),
      inList: await ids(where("category", "in", ["dairy", "snacks"])),
      notIn: await ids(where("category", "not-in", ["dairy", "snacks"])),
      either: await ids(or(where("price", "<", 1500), where("category", "==", "dairy"))),
      both: await ids(and(where("category", "==", "snacks"), where("price", ">", 1500))),
    };
    const firstPage = await getDocs(query(products, orderBy("price"), limit(2)));
    outcome.nextPage = await ids(orderBy("price"), startAfter(firstPage.docs.at(-1)), limit(2));
    const snapshot = await getDocs(query(products, where("category", "==", "dairy")));
    outcome.dairy = snapshot.docs.map((document) => plain(document.data()));

    assert.deepEqual(outcome, {
      all: ["a", "b", "c", "d", "e"],
      snacks: ["b", "c"],
      cheapFirst: ["b", "c", "e"],
      dearFirst: ["a", "d"],
      range: ["c", "e", "d"],
      notSnacks: ["e", "a", "d"],
      tagged: ["b"],
      anyTag: ["a", "c"],
      inList: ["b", "c", "e"],
      notIn: ["a", "d"],
      either: ["b", "e"],
      both: ["c"],
      nextPage: ["e", "d"],
      dairy: [{ category: "dairy", name: "Eggs (6)", price: 4200 }],
    });
    return outcome;
  },

  "writeBatch applies all its writes or none": async (db) => {
    const kept = doc(db, SHOP, "batch", "kept");
    const removed = doc(db, SHOP, "batch", "removed");
    await setDoc(removed, { n: 1 });
    await setDoc(kept, { n: 1, name: "old" });
    const batch = writeBatch(db);
    batch.set(doc(db, SHOP, "batch", "created"), { n: 3 });
    batch.update(kept, { n: increment(10), name: "new" });
    batch.delete(removed);
    await batch.commit();
    const applied = {
      created: await dataOf(doc(db, SHOP, "batch", "created")),
      kept: await dataOf(kept),
      removed: await dataOf(removed),
    };
    assert.deepEqual(applied, {
      created: { n: 3 },
      kept: { n: 11, name: "new" },
      removed: "missing",
    });

    const failing = writeBatch(db);
    failing.set(doc(db, SHOP, "batch", "half"), { n: 1 });
    failing.update(kept, { n: increment(1) });
    failing.update(doc(db, SHOP, "batch", "absent"), { n: 1 });
    const failed = await errorCode(failing.commit());
    assert.equal(failed, "not-found");
    const untouched = {
      half: await dataOf(doc(db, SHOP, "batch", "half")),
      kept: await dataOf(kept),
    };
    assert.deepEqual(untouched, { half: "missing", kept: { n: 11, name: "new" } });
    return { applied, failed, untouched };
  },

  "runTransaction reads, verifies what it read and writes atomically": async (db) => {
    const till = doc(db, SHOP, "tills", "t1");
    const customer = doc(db, SHOP, "customers", "khata-1");
    const ghost = doc(db, SHOP, "customers", "ghost");
    await setDoc(till, { cash: 500 });
    await setDoc(customer, { balance: 120 });
    const returned = await runTransaction(db, async (transaction) => {
      const tillSnapshot = await transaction.get(till);
      const customerSnapshot = await transaction.get(customer);
      const ghostSnapshot = await transaction.get(ghost);
      // The till and the ghost are read but not written: the commit carries `verify` writes
      // for them (an `updateTime` and an `exists: false` precondition).
      transaction.update(customer, {
        balance: customerSnapshot.data().balance - 20,
        lastPaidInto: tillSnapshot.id,
      });
      transaction.set(doc(db, SHOP, "payments", "pay-1"), { amount: 20 });
      return { cash: tillSnapshot.data().cash, ghost: ghostSnapshot.exists() };
    });
    assert.deepEqual(returned, { cash: 500, ghost: false });
    const written = {
      customer: await dataOf(customer),
      payment: await dataOf(doc(db, SHOP, "payments", "pay-1")),
      till: await dataOf(till),
    };
    assert.deepEqual(written, {
      customer: { balance: 100, lastPaidInto: "t1" },
      payment: { amount: 20 },
      till: { cash: 500 },
    });
    return { returned, written };
  },

  "runTransaction retries on contention and a throwing function writes nothing": async (db) => {
    const counter = doc(db, SHOP, "counters", "bills");
    await setDoc(counter, { next: 0 });
    // Three transactions read the same counter at once; all but one must fail their `updateTime`
    // precondition and be retried by the SDK, so every increment counts exactly once.
    const numbers = await Promise.all(
      [1, 2, 3].map(() =>
        runTransaction(db, async (transaction) => {
          const next = (await transaction.get(counter)).data().next;
          transaction.update(counter, { next: next + 1 });
          return next;
        }),
      ),
    );
    assert.deepEqual([...numbers].sort(), [0, 1, 2]);
    assert.deepEqual(await dataOf(counter), { next: 3 });

    const thrown = await runTransaction(db, async (transaction) => {
      await transaction.get(counter);
      transaction.update(counter, { next: 99 });
      throw new Error("the cashier cancelled");
    }).then(
      () => "resolved",
      (error) => error.message,
    );
    assert.equal(thrown, "the cashier cancelled");
    assert.deepEqual(await dataOf(counter), { next: 3 });
    return { numbers: [...numbers].sort(), thrown, counter: await dataOf(counter) };
  },

  "runTransaction retries when another client writes between its read and its commit": async (
    db,
  ) => {
    const stock = doc(db, SHOP, "products", "contended");
    const reserved = doc(db, SHOP, "reservations", "r1");
    await setDoc(stock, { stock: 10 });
    let attempts = 0;
    const seen = await runTransaction(db, async (transaction) => {
      attempts += 1;
      const current = (await transaction.get(stock)).data().stock;
      const reservation = await transaction.get(reserved);
      if (attempts === 1) {
        // Another till sells 3 and creates the reservation this transaction saw missing: both
        // the `updateTime` precondition and the `exists: false` verify now fail.
        await setDoc(stock, { stock: current - 3 });
        await setDoc(reserved, { by: "till-2" });
      }
      transaction.update(stock, { stock: current - 1 });
      return { current, reserved: reservation.exists() };
    });
    assert.equal(attempts, 2, "the SDK retried once");
    assert.deepEqual(seen, { current: 7, reserved: true });
    assert.deepEqual(await dataOf(stock), { stock: 6 });

    // Without retries the same interference fails the transaction, and nothing it wrote lands.
    const onlyOnce = await errorCode(
      runTransaction(
        db,
        async (transaction) => {
          const current = (await transaction.get(stock)).data().stock;
          await setDoc(stock, { stock: current + 100 });
          transaction.update(stock, { stock: 0 });
        },
        { maxAttempts: 1 },
      ),
    );
    assert.equal(onlyOnce, "failed-precondition");
    assert.deepEqual(await dataOf(stock), { stock: 106 });
    const missingThenCreated = await errorCode(
      runTransaction(
        db,
        async (transaction) => {
          const ghost = doc(db, SHOP, "reservations", "r2");
          await transaction.get(ghost);
          await setDoc(ghost, { by: "till-3" });
          transaction.set(doc(db, SHOP, "reservations", "r3"), { by: "till-1" });
        },
        { maxAttempts: 1 },
      ),
    );
    assert.equal(missingThenCreated, "aborted");
    assert.deepEqual(await dataOf(doc(db, SHOP, "reservations", "r3")), "missing");
    return { attempts, seen, onlyOnce, missingThenCreated };
  },

  "getCount (getCountFromServer) counts a collection and a filtered query": async (db) => {
    const bills = collection(db, SHOP, "bills");
    for (let index = 0; index < 7; index += 1) {
      await setDoc(doc(bills, `b${index}`), {
        status: index % 3 === 0 ? "void" : "final",
        total: index * 100,
      });
    }
    const counts = {
      all: (await getCount(bills)).data().count,
      final: (await getCount(query(bills, where("status", "==", "final")))).data().count,
      limited: (await getCount(query(bills, orderBy("total"), limit(4)))).data().count,
      none: (await getCount(collection(db, SHOP, "empty"))).data().count,
    };
    assert.deepEqual(counts, { all: 7, final: 4, limited: 4, none: 0 });
    return counts;
  },

  "getAggregate sums and averages": async (db) => {
    const sales = collection(db, SHOP, "sales");
    const rows = [
      { day: "mon", amount: 1200, weight: 0.5 },
      { day: "mon", amount: 800, weight: 1.25 },
      { day: "tue", amount: 500 },
      { day: "tue", amount: "n/a" },
    ];
    for (const [index, row] of rows.entries()) await setDoc(doc(sales, `s${index}`), row);
    const aggregate = async (target, spec) => (await getAggregate(target, spec)).data();
    const outcome = {
      count: await aggregate(sales, { bills: count() }),
      amount: await aggregate(sales, { amount: sum("amount") }),
      mean: await aggregate(sales, { mean: average("amount") }),
      weight: await aggregate(sales, { weight: sum("weight") }),
      absent: await aggregate(sales, { absent: average("absent") }),
      // Several aggregations in one request only see the documents that have every field they
      // name (as the emulator answers), so a count beside sums is not the collection's size.
      combined: await aggregate(sales, {
        bills: count(),
        amount: sum("amount"),
        weight: sum("weight"),
      }),
      withAbsent: await aggregate(sales, { bills: count(), absent: average("absent") }),
      monday: await aggregate(query(sales, where("day", "==", "mon")), {
        bills: count(),
        mean: average("amount"),
      }),
    };
    assert.deepEqual(outcome, {
      count: { bills: 4 },
      amount: { amount: 2500 },
      mean: { mean: 2500 / 3 },
      weight: { weight: 1.75 },
      absent: { absent: null },
      combined: { bills: 2, amount: 2000, weight: 1.75 },
      withAbsent: { bills: 0, absent: null },
      monday: { bills: 2, mean: 1000 },
    });
    return outcome;
  },
};

describe("the Firebase JS SDK Lite against both backends", () => {
  let server;
  let emulator;
  const apps = [];
  const databases = {};
  const outcomes = {};

  before(async () => {
    [server, emulator] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-lite-") }),
      startEmulator(),
    ]);
    for (const backend of BACKENDS) {
      const endpoint = new URL(backend === "counterbook-server" ? server.url : emulator.url);
      // A fresh project per run: the emulator keeps its data for as long as it runs.
      const app = initializeApp(
        { projectId: `lite-${backend}-${Date.now()}`, apiKey: "fake-api-key" },
        backend,
      );
      apps.push(app);
      const db = getFirestore(app);
      connectFirestoreEmulator(db, endpoint.hostname, Number(endpoint.port));
      databases[backend] = db;
    }
  });

  after(async () => {
    await Promise.all(apps.map((app) => deleteApp(app)));
    await Promise.all([server?.stop(), emulator?.stop()]);
  });

  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    for (const backend of BACKENDS) {
      test(`${name} (${backend})`, async () => {
        outcomes[name] ??= {};
        outcomes[name][backend] = await scenario(databases[backend]);
      });
    }
    test(`${name}: the same outcome on both backends`, () => {
      const seen = outcomes[name] ?? {};
      for (const backend of BACKENDS) {
        assert.ok(backend in seen, `the scenario failed on ${backend}`);
      }
      assert.deepEqual(seen["counterbook-server"], seen["firestore-emulator"]);
    });
  }
});
