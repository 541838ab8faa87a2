//! Commands that change a mailbox: STORE, EXPUNGE, COPY/MOVE, APPEND, CREATE/DELETE/RENAME.

use imap_types::command::{CommandBody, StoreModifier};
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::response::{Code, StatusKind};

use super::commands::fetched_from;
use super::commands::{
    imap_date, mailbox, parse_flag, quoted, seqset, uid_mapping, vanished_ranges, StoreResult,
    UidMapping,
};
use super::error::ImapError;
use super::session::{Piece, Session, Untagged};
use super::types::{is_storable_flag, AppendMessage};
use imap_types::response::Data;

impl Session {
    /// `UID STORE set +FLAGS/-FLAGS/FLAGS (...)`, with UNCHANGEDSINCE when given (and
    /// CONDSTORE is on).
    pub async fn uid_store(
        &mut self,
        set: &str,
        kind: StoreType,
        flags: &[String],
        unchanged_since: Option<u64>,
        silent: bool,
    ) -> Result<StoreResult, ImapError> {
        let flags: Vec<Flag<'static>> = flags
            .iter()
            .filter(|f| is_storable_flag(f))
            .map(|f| parse_flag(f))
            .collect::<Result<_, _>>()?;
        let mut modifiers = Vec::new();
        if let Some(m) = unchanged_since {
            if self.condstore {
                modifiers.push(StoreModifier::UnchangedSince(m));
            }
        }
        let body = CommandBody::Store {
            sequence_set: seqset(set)?,
            kind,
            response: if silent {
                StoreResponse::Silent
            } else {
                StoreResponse::Answer
            },
            flags,
            uid: true,
            modifiers,
        };
        let p = self.send(body, "UID STORE").await?;
        let mut res = StoreResult::default();
        let c = self
            .finish(p, &mut |u| {
                if let Untagged::Data(Data::Fetch { seq, items }) = u {
                    let m = fetched_from(seq.get(), items.as_ref());
                    if m.uid != 0 {
                        res.fetched.push(m);
                    }
                }
                Ok(())
            })
            .await?
            .ok("UID STORE")?;
        if let Some(Code::Modified(set)) = &c.code {
            for (a, b) in vanished_ranges(set) {
                if b - a <= 1_000_000 {
                    res.modified.extend(a..=b);
                }
            }
        }
        Ok(res)
    }

    /// `UID EXPUNGE set` (UIDPLUS): expunges exactly these UIDs.
    pub async fn uid_expunge(&mut self, set: &str) -> Result<(), ImapError> {
        if !self.has("UIDPLUS") {
            return Err(ImapError::Protocol(
                "the server lacks UIDPLUS: cannot expunge single messages safely".into(),
            ));
        }
        self.simple(
            CommandBody::ExpungeUid {
                sequence_set: seqset(set)?,
            },
            "UID EXPUNGE",
        )
        .await?;
        Ok(())
    }

    /// Plain EXPUNGE: removes every `\Deleted` message of the selected mailbox.
    pub async fn expunge_all(&mut self) -> Result<(), ImapError> {
        self.simple(CommandBody::Expunge, "EXPUNGE").await?;
        Ok(())
    }

    /// `UID COPY` (or `UID MOVE` when `move_` and offered); returns COPYUID if sent.
    pub async fn uid_copy(
        &mut self,
        set: &str,
        dest_raw: &[u8],
        move_: bool,
    ) -> Result<Option<UidMapping>, ImapError> {
        let (body, name) = if move_ {
            (
                CommandBody::Move {
                    sequence_set: seqset(set)?,
                    mailbox: mailbox(dest_raw)?,
                    uid: true,
                },
                "UID MOVE",
            )
        } else {
            (
                CommandBody::Copy {
                    sequence_set: seqset(set)?,
                    mailbox: mailbox(dest_raw)?,
                    uid: true,
                },
                "UID COPY",
            )
        };
        let p = self.send(body, name).await?;
        let mut mapping = None;
        let c = self
            .finish(p, &mut |u| {
                // MOVE sends COPYUID in an untagged OK.
                if let Untagged::Status(b) = &u {
                    if let Some(m) = uid_mapping(&b.code) {
                        mapping = Some(m);
                    }
                }
                Ok(())
            })
            .await?
            .ok(name)?;
        Ok(mapping.or_else(|| uid_mapping(&c.code)))
    }

    /// Appends messages to a mailbox: one MULTIAPPEND command when offered, else pipelined
    /// APPENDs. Returns the APPENDUID mapping per message where the server gave one.
    /// With MULTIAPPEND the batch is atomic: an error means none was appended.
    pub async fn append(
        &mut self,
        raw: &[u8],
        messages: &[AppendMessage<'_>],
    ) -> Result<Vec<Option<(u32, u32)>>, ImapError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mbox = quoted(raw);
        let encode_meta = |m: &AppendMessage<'_>| -> Vec<u8> {
            let flags: Vec<&str> = m
                .flags
                .iter()
                .map(String::as_str)
                .filter(|f| is_storable_flag(f))
                .collect();
            let mut t = format!(" ({})", flags.join(" ")).into_bytes();
            if let Some(d) = m.internaldate.and_then(imap_date) {
                t.extend_from_slice(format!(" \"{d}\"").as_bytes());
            }
            t.push(b' ');
            t
        };
        let multi = messages.len() > 1 && self.has("MULTIAPPEND");
        let mut results = Vec::with_capacity(messages.len());
        if multi {
            let metas: Vec<Vec<u8>> = messages.iter().map(encode_meta).collect();
            let mut pieces = vec![
                Piece::Text(b"APPEND ".as_slice().into()),
                Piece::Text(mbox.clone().into()),
            ];
            for (m, meta) in messages.iter().zip(&metas) {
                pieces.push(Piece::Text(meta.as_slice().into()));
                pieces.push(Piece::Literal(m.body));
            }
            let p = self.send_pieces("APPEND", &pieces).await?;
            let c = self.finish(p, &mut |_| Ok(())).await?.ok("APPEND")?;
            match uid_mapping(&c.code) {
                Some(map) if map.destination.len() == messages.len() => {
                    results.extend(map.destination.iter().map(|&u| Some((map.uidvalidity, u))))
                }
                _ => results.extend(messages.iter().map(|_| None)),
            }
            return Ok(results);
        }
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let meta = encode_meta(m);
            let pieces = [
                Piece::Text(b"APPEND ".as_slice().into()),
                Piece::Text(mbox.as_slice().into()),
                Piece::Text(meta.into()),
                Piece::Literal(m.body),
            ];
            pending.push(self.send_pieces("APPEND", &pieces).await?);
        }
        let mut first_err = None;
        for p in pending {
            let c = self.finish(p, &mut |_| Ok(())).await?;
            if c.kind == StatusKind::Ok {
                results.push(
                    uid_mapping(&c.code)
                        .and_then(|m| m.destination.first().map(|&u| (m.uidvalidity, u))),
                );
            } else {
                if first_err.is_none() {
                    first_err = Some(c.ok("APPEND").err());
                }
                results.push(None);
            }
        }
        if let Some(Some(e)) = first_err {
            // Partial success is reported as an error: callers re-detect what landed.
            return Err(e);
        }
        Ok(results)
    }

    /// CREATE a mailbox (name already encoded for the server).
    pub async fn create(&mut self, raw: &[u8]) -> Result<(), ImapError> {
        self.simple(
            CommandBody::Create {
                mailbox: mailbox(raw)?,
            },
            "CREATE",
        )
        .await?;
        Ok(())
    }

    /// DELETE a mailbox.
    pub async fn delete(&mut self, raw: &[u8]) -> Result<(), ImapError> {
        self.simple(
            CommandBody::Delete {
                mailbox: mailbox(raw)?,
            },
            "DELETE",
        )
        .await?;
        Ok(())
    }

    /// RENAME a mailbox.
    pub async fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), ImapError> {
        self.simple(
            CommandBody::Rename {
                from: mailbox(from)?,
                to: mailbox(to)?,
            },
            "RENAME",
        )
        .await?;
        Ok(())
    }
}
