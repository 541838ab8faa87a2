//! Planner tests: hand-written cases and a simulated two-sided history with crashes.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;

use super::*;

fn flags(v: &[&str]) -> Flags {
    v.iter().map(|s| s.to_string()).collect()
}

fn fp(id: i64) -> Fingerprint {
    Fingerprint {
        msgid: id,
        size: 100 + id as u32,
        date: 1_000 + id,
    }
}

#[test]
fn merge_rules() {
    let base = flags(&["\\Seen", "$a"]);
    let a = flags(&["\\Seen", "$a", "\\Flagged"]); // added \Flagged
    let b = flags(&["$a"]); // removed \Seen
    assert_eq!(merge_flags(&base, &a, &b), flags(&["$a", "\\Flagged"]));
    assert_eq!(merge_flags(&base, &base, &base), base);
}

#[test]
fn normalizes_system_flags() {
    assert_eq!(
        normalize_flags(["\\SEEN", "\\recent", "$Label", "\\flagged"]),
        flags(&["\\Seen", "\\Flagged", "$Label"])
    );
}

#[test]
fn new_message_is_copied_and_flag_change_propagates() {
    let recs = vec![Record {
        id: 1,
        uid: [Some(1), Some(7)],
        flags: Flags::new(),
        fp: fp(1),
        pending_since: None,
    }];
    let mut ch = [SideChanges::default(), SideChanges::default()];
    ch[1].new.push(NewMessage {
        uid: 8,
        flags: flags(&["\\Seen"]),
        fp: fp(2),
    });
    ch[0].flags.insert(1, (flags(&["\\Seen"]), Some(5)));
    let p = plan(&recs, &ch, &Policy::default());
    assert_eq!(p.copies.len(), 1);
    assert_eq!(p.copies[0].from, Side::Remote);
    assert_eq!(p.flags.len(), 1);
    assert_eq!(p.flags[0].0.side, Side::Remote);
    assert_eq!(p.flags[0].0.add, flags(&["\\Seen"]));
}

#[test]
fn expunge_wins_over_flag_change_by_default() {
    let recs = vec![Record {
        id: 1,
        uid: [Some(1), Some(1)],
        flags: Flags::new(),
        fp: fp(1),
        pending_since: None,
    }];
    let mut ch = [SideChanges::default(), SideChanges::default()];
    ch[0].vanished.insert(1);
    ch[1].flags.insert(1, (flags(&["\\Flagged"]), None));
    let p = plan(&recs, &ch, &Policy::default());
    assert_eq!(p.expunges[1], vec![(1, 1)]);
    assert!(p.copies.is_empty());
    let keep = Policy {
        expunge_wins: false,
        ..Policy::default()
    };
    let p = plan(&recs, &ch, &keep);
    assert!(p.expunges[1].is_empty());
    assert_eq!(p.copies.len(), 1);
}

#[test]
fn pending_copy_is_recognised_not_duplicated() {
    // A copy from local UID 3 was appended remotely but APPENDUID was never recorded.
    let recs = vec![Record {
        id: 9,
        uid: [Some(3), None],
        flags: Flags::new(),
        fp: fp(3),
        pending_since: Some(20),
    }];
    let mut ch = [SideChanges::default(), SideChanges::default()];
    ch[1].new.push(NewMessage {
        uid: 20,
        flags: Flags::new(),
        fp: fp(3),
    });
    let p = plan(&recs, &ch, &Policy::default());
    assert!(p.copies.is_empty(), "{p:?}");
    assert_eq!(
        p.records,
        vec![RecordChange::Update {
            id: 9,
            uid: [Some(3), Some(20)],
            flags: Flags::new()
        }]
    );
    // Below pending_since it is some other message: copy again and copy that one over.
    let mut ch2 = [SideChanges::default(), SideChanges::default()];
    ch2[1].new.push(NewMessage {
        uid: 19,
        flags: Flags::new(),
        fp: fp(3),
    });
    let p = plan(&recs, &ch2, &Policy::default());
    assert_eq!(p.copies.len(), 2);
}

#[test]
fn uidvalidity_change_rematches_by_fingerprint() {
    let recs: Vec<Record> = (1..=3)
        .map(|i| Record {
            id: i,
            uid: [Some(i as u32), Some(i as u32)],
            flags: Flags::new(),
            fp: fp(i),
            pending_since: None,
        })
        .collect();
    let mut ch = [SideChanges::default(), SideChanges::default()];
    ch[1].uidvalidity_changed = true;
    for i in 1..=3 {
        ch[1].new.push(NewMessage {
            uid: 100 + i as u32,
            flags: Flags::new(),
            fp: fp(i),
        });
    }
    ch[1].new.push(NewMessage {
        uid: 200,
        flags: Flags::new(),
        fp: fp(50),
    });
    let p = plan(&recs, &ch, &Policy::default());
    assert!(p.expunges.iter().all(Vec::is_empty));
    assert_eq!(
        p.copies.len(),
        1,
        "only the unknown message is copied: {p:?}"
    );
    assert_eq!(p.copies[0].uid, 200);
    assert_eq!(p.records.len(), 3);
}

#[test]
fn identical_messages_on_both_sides_are_paired() {
    let mut ch = [SideChanges::default(), SideChanges::default()];
    ch[0].new.push(NewMessage {
        uid: 1,
        flags: flags(&["\\Seen"]),
        fp: fp(1),
    });
    ch[1].new.push(NewMessage {
        uid: 5,
        flags: flags(&["\\Flagged"]),
        fp: fp(1),
    });
    let p = plan(&[], &ch, &Policy::default());
    assert!(p.copies.is_empty());
    assert_eq!(p.flags.len(), 2);
    assert_eq!(
        p.records,
        vec![RecordChange::Insert {
            uid: [1, 5],
            flags: Flags::new(),
            fp: fp(1)
        }]
    );
}

// ---------------------------------------------------------------------------------------
// Simulation: two in-memory mail stores, a state, random user operations, syncs that may
// crash after any step, and the invariants: both sides equal, nothing lost, nothing
// duplicated, and a second sync does nothing.

#[derive(Debug, Clone, Default)]
struct SimSide {
    msgs: BTreeMap<u32, (i64, Flags)>,
    uidnext: u32,
    uidvalidity: u32,
}

impl SimSide {
    fn add(&mut self, content: i64, f: Flags) -> u32 {
        self.uidnext = self.uidnext.max(1);
        let uid = self.uidnext;
        self.uidnext += 1;
        self.msgs.insert(uid, (content, f));
        uid
    }
}

#[derive(Debug, Clone, Default)]
struct Sim {
    sides: [SimSide; 2],
    records: Vec<Record>,
    saved_uidnext: [u32; 2],
    saved_uidvalidity: [u32; 2],
    next_id: i64,
}

fn sfp(content: i64) -> Fingerprint {
    Fingerprint {
        msgid: content,
        size: 10,
        date: content,
    }
}

impl Sim {
    fn changes(&self, s: usize) -> SideChanges {
        let side = &self.sides[s];
        let mut ch = SideChanges::default();
        let uv_changed =
            self.saved_uidvalidity[s] != 0 && self.saved_uidvalidity[s] != side.uidvalidity;
        ch.uidvalidity_changed = uv_changed;
        let since = if uv_changed { 0 } else { self.saved_uidnext[s] };
        for (&uid, (c, f)) in &side.msgs {
            if uid >= since {
                ch.new.push(NewMessage {
                    uid,
                    flags: f.clone(),
                    fp: sfp(*c),
                });
            } else {
                ch.flags.insert(uid, (f.clone(), None));
            }
        }
        if !uv_changed {
            for r in &self.records {
                if let Some(u) = r.uid[s] {
                    if u < since && !side.msgs.contains_key(&u) {
                        ch.vanished.insert(u);
                    }
                }
            }
        }
        ch
    }

    /// Runs one sync; stops after `budget` steps (a crash) if given. Returns the plan.
    fn sync(&mut self, mut budget: Option<usize>) -> (Plan, bool) {
        let ch = [self.changes(0), self.changes(1)];
        let p = plan(&self.records, &ch, &Policy::default());
        let step = |budget: &mut Option<usize>| -> bool {
            match budget {
                Some(0) => false,
                Some(n) => {
                    *n -= 1;
                    true
                }
                None => true,
            }
        };
        // UIDVALIDITY observed: as the engine does (in the transaction of the record
        // changes), the changed side's UIDs are voided first.
        if !p.records.is_empty() || ch.iter().any(|c| c.uidvalidity_changed) {
            if !step(&mut budget) {
                return (p, false);
            }
            for (s, c) in ch.iter().enumerate() {
                if c.uidvalidity_changed {
                    for r in &mut self.records {
                        if r.uid[s].is_some() {
                            r.uid[s] = None;
                            r.pending_since = Some(0);
                        }
                    }
                }
            }
        }
        for rc in &p.records {
            if !step(&mut budget) {
                return (p, false);
            }
            match rc {
                RecordChange::Delete(id) => self.records.retain(|r| r.id != *id),
                RecordChange::Update { id, uid, flags } => {
                    if let Some(r) = self.records.iter_mut().find(|r| r.id == *id) {
                        r.uid = *uid;
                        r.flags = flags.clone();
                        r.pending_since = None;
                    }
                }
                RecordChange::Insert { uid, flags, fp } => {
                    self.next_id += 1;
                    self.records.push(Record {
                        id: self.next_id,
                        uid: [Some(uid[0]), Some(uid[1])],
                        flags: flags.clone(),
                        fp: *fp,
                        pending_since: None,
                    });
                }
            }
        }
        for c in &p.copies {
            let t = c.from.other().i();
            // 1. pending record
            if !step(&mut budget) {
                return (p, false);
            }
            let since = self.sides[t].uidnext.max(1);
            let id = match c.record {
                Some(id) => {
                    if let Some(r) = self.records.iter_mut().find(|r| r.id == id) {
                        r.pending_since = Some(since);
                        r.uid[t] = None;
                        // As the state does: the source UID may have been re-matched in
                        // the plan only (after a UIDVALIDITY change).
                        r.uid[c.from.i()] = Some(c.uid);
                    }
                    id
                }
                None => {
                    self.next_id += 1;
                    let mut uid = [None, None];
                    uid[c.from.i()] = Some(c.uid);
                    self.records.push(Record {
                        id: self.next_id,
                        uid,
                        flags: c.flags.clone(),
                        fp: c.fp,
                        pending_since: Some(since),
                    });
                    self.next_id
                }
            };
            // 2. append
            if !step(&mut budget) {
                return (p, false);
            }
            let content = self.sides[c.from.i()]
                .msgs
                .get(&c.uid)
                .map(|m| m.0)
                .unwrap_or(c.fp.msgid);
            let new_uid = self.sides[t].add(content, c.flags.clone());
            // 3. record the UID
            if !step(&mut budget) {
                return (p, false);
            }
            if let Some(r) = self.records.iter_mut().find(|r| r.id == id) {
                r.uid[t] = Some(new_uid);
                r.flags = c.flags.clone();
                r.pending_since = None;
            }
        }
        let mut failed: HashSet<[u32; 2]> = HashSet::new();
        let mut done: HashMap<[u32; 2], Flags> = HashMap::new();
        for (a, key, merged) in &p.flags {
            if !step(&mut budget) {
                return (p, false);
            }
            match self.sides[a.side.i()].msgs.get_mut(&a.uid) {
                Some((_, f)) => {
                    for x in &a.add {
                        f.insert(x.clone());
                    }
                    for x in &a.remove {
                        f.remove(x);
                    }
                    done.insert(*key, merged.clone());
                }
                None => {
                    failed.insert(*key);
                }
            }
        }
        for (key, merged) in done {
            if failed.contains(&key) {
                continue;
            }
            if !step(&mut budget) {
                return (p, false);
            }
            if let Some(r) = self
                .records
                .iter_mut()
                .find(|r| r.uid == [Some(key[0]), Some(key[1])])
            {
                r.flags = merged;
            }
        }
        for s in 0..2 {
            for (uid, id) in &p.expunges[s] {
                if !step(&mut budget) {
                    return (p, false);
                }
                self.sides[s].msgs.remove(uid);
                if !step(&mut budget) {
                    return (p, false);
                }
                self.records.retain(|r| r.id != *id);
            }
        }
        if !step(&mut budget) {
            return (p, false);
        }
        for s in 0..2 {
            self.saved_uidnext[s] = self.sides[s].uidnext.max(1);
            self.saved_uidvalidity[s] = self.sides[s].uidvalidity;
        }
        (p, true)
    }

    fn contents(&self, s: usize) -> Vec<(i64, Flags)> {
        let mut v: Vec<(i64, Flags)> = self.sides[s].msgs.values().cloned().collect();
        v.sort();
        v
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, Vec<&'static str>),
    Flag(usize, usize, &'static str, bool),
    Expunge(usize, usize),
    ResetUidvalidity(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let flag = prop::sample::select(vec!["\\Seen", "\\Flagged", "\\Answered", "$Work"]);
    prop_oneof![
        4 => (0..2usize, prop::collection::vec(flag.clone(), 0..2)).prop_map(|(s, f)| Op::Add(s, f)),
        3 => (0..2usize, 0..50usize, flag, any::<bool>()).prop_map(|(s, i, f, on)| Op::Flag(s, i, f, on)),
        2 => (0..2usize, 0..50usize).prop_map(|(s, i)| Op::Expunge(s, i)),
        1 => (0..2usize).prop_map(Op::ResetUidvalidity),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn random_histories_converge(rounds in prop::collection::vec((prop::collection::vec(op(), 0..8), prop::option::of(0usize..30)), 1..5)) {
        let mut sim = Sim::default();
        sim.sides[0].uidvalidity = 1;
        sim.sides[1].uidvalidity = 1;
        let mut next_content = 0i64;
        // Contents the user expunged: they may legitimately be gone.
        let mut expunged: HashSet<i64> = HashSet::new();
        let mut added: HashSet<i64> = HashSet::new();
        for (ops, crash) in rounds {
            // UIDVALIDITY resets of either side or both, any number per round.
            for o in ops {
                match o {
                    Op::Add(s, f) => {
                        next_content += 1;
                        added.insert(next_content);
                        sim.sides[s].add(next_content, flags(&f));
                    }
                    Op::Flag(s, i, f, on) => {
                        let uids: Vec<u32> = sim.sides[s].msgs.keys().copied().collect();
                        if !uids.is_empty() {
                            let uid = uids[i % uids.len()];
                            if let Some((_, fl)) = sim.sides[s].msgs.get_mut(&uid) {
                                if on { fl.insert(f.to_string()); } else { fl.remove(f); }
                            }
                        }
                    }
                    Op::Expunge(s, i) => {
                        let uids: Vec<u32> = sim.sides[s].msgs.keys().copied().collect();
                        if !uids.is_empty() {
                            let uid = uids[i % uids.len()];
                            if let Some((c, _)) = sim.sides[s].msgs.remove(&uid) {
                                expunged.insert(c);
                            }
                        }
                    }
                    Op::ResetUidvalidity(s) => {
                        // The server renumbers everything.
                        let side = &mut sim.sides[s];
                        let msgs: Vec<(i64, Flags)> = side.msgs.values().cloned().collect();
                        side.msgs.clear();
                        side.uidvalidity += 1;
                        side.uidnext = 1;
                        for (c, f) in msgs { side.add(c, f); }
                    }
                }
            }
            // A sync that may crash, then a clean one.
            let (_, finished) = sim.sync(crash);
            if !finished {
                let (_, ok) = sim.sync(None);
                prop_assert!(ok);
            }
            // Flag conflicts may need one more pass to settle; after that, nothing to do.
            let (p2, _) = sim.sync(None);
            let (p3, _) = sim.sync(None);
            prop_assert!(p3.is_empty(), "third sync not empty: {:?} (second: {:?})", p3, p2);
            prop_assert_eq!(sim.contents(0), sim.contents(1));
            // Nothing duplicated.
            let mut seen = HashSet::new();
            for (c, _) in sim.contents(0) {
                prop_assert!(seen.insert(c), "content {} duplicated", c);
            }
            // Nothing lost: every content never expunged by the user is present.
            for c in &added {
                if !expunged.contains(c) {
                    prop_assert!(seen.contains(c), "content {} lost", c);
                }
            }
        }
    }
}
