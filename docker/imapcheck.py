#!/usr/bin/env python3
"""Independent IMAP view of the testbed, used by test-compose.sh (standard library only).

  imapcheck.py snapshot HOST:PORT USER      print one line per message: folder, sha256, flags
  imapcheck.py same A_HOST:PORT A_USER B_HOST:PORT B_USER [MIN]
                                             exit 0 when both accounts hold the same messages
                                             (by content hash) with the same flags, and at
                                             least MIN messages; else print the difference
  imapcheck.py flag HOST:PORT USER FOLDER FLAG  add FLAG to the folder's first message
                                             without it; print that message's sha256
"""
import hashlib
import imaplib
import re
import sys

PASSWORD = "secret"


def connect(addr, user):
    host, port = addr.rsplit(":", 1)
    c = imaplib.IMAP4(host, int(port))
    c.login(user, PASSWORD)
    return c


def folders(c):
    typ, data = c.list('""', "*")
    out = []
    for line in data:
        m = re.match(rb'\((?P<attrs>[^)]*)\) (?:"(?P<d>.)"|NIL) (?P<name>.*)$', line)
        if not m or b"\\Noselect" in m.group("attrs"):
            continue
        name = m.group("name").decode()
        out.append(name)
    return sorted(out)


def snapshot(addr, user):
    c = connect(addr, user)
    rows = []
    for f in folders(c):
        c.select(f, readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta, body = item
            flags = re.search(rb"FLAGS \(([^)]*)\)", meta)
            fl = sorted(x for x in (flags.group(1).decode().split() if flags else [])
                        if x != "\\Recent")
            rows.append((f, hashlib.sha256(body).hexdigest(), " ".join(fl)))
    c.logout()
    return sorted(rows)


def main(argv):
    cmd = argv[1]
    if cmd == "snapshot":
        for r in snapshot(argv[2], argv[3]):
            print("\t".join(r))
        return 0
    if cmd == "same":
        a, b = snapshot(argv[2], argv[3]), snapshot(argv[4], argv[5])
        need = int(argv[6]) if len(argv) > 6 else 1
        if a == b and len(a) >= need:
            print(f"imapcheck: same {len(a)} messages and flags on both sides")
            return 0
        sa, sb = set(a), set(b)
        print(f"imapcheck: differ: {len(a)} vs {len(b)} messages (need {need}); "
              f"only in A: {sorted(sa - sb)[:5]} only in B: {sorted(sb - sa)[:5]}")
        return 1
    if cmd == "flag":
        addr, user, folder, flag = argv[2:6]
        c = connect(addr, user)
        c.select(folder)
        typ, data = c.uid("SEARCH", "UN" + flag.lstrip("\\").upper()
                          if flag.startswith("\\") else "UNKEYWORD " + flag)
        uids = data[0].split()
        if not uids:
            print("imapcheck: no message without " + flag, file=sys.stderr)
            return 1
        uid = uids[0].decode()
        c.uid("STORE", uid, "+FLAGS", "(" + flag + ")")
        typ, data = c.uid("FETCH", uid, "(BODY.PEEK[])")
        print(hashlib.sha256(data[0][1]).hexdigest())
        c.logout()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
