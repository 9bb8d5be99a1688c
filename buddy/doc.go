// Package buddy keeps a recording server's membership in its site: who is
// alive (hashicorp/memberlist heartbeats), every server's replicated
// Record, and the secrets a server hands to its buddies, the servers that
// take over its cameras when it fails.
//
// # Records
//
// Every server owns one Record (an opaque Body plus a Version). SetRecord
// replicates it to every member: when it fits in a UDP packet (≤ 1 KiB
// encoded), one packet to each alive member and piggybacked on gossip
// (whose few copies may all reach one peer, and a peer forwards only
// records it accepts); over TCP to each alive member otherwise; to each
// newcomer when it joins; and by memberlist's push/pull
// anti-entropy (every 15 s, on join) which carries every record known,
// including those of dead servers. The higher Version wins. Versions are
// max(previous+1, wall-clock nanoseconds), and a server that sees a peer
// holding a higher version of its own record (signed with its own key)
// republishes above it, so a restarted server continues upward even when
// its clock stepped back. (One that lost its state dir lost its node key
// too: see Integrity.)
// Records received are persisted in StateDir/cluster.db (bbolt) by a
// background writer, so a server restarted during an outage still knows
// the whole site, including servers that are down.
//
// Gossip is not compressed (memberlist's EnableCompression is off): its
// LZW allocates a 16 KiB table for every packet, which at a 50 ms gossip
// tick was most of the gossip CPU and made 100 members in one process flap.
//
// # Integrity
//
// The gossip key is the door: without it nothing is read. Inside, every
// server signs its records and secrets with its own Ed25519 node key
// (StateDir/node.key, made at first start, 0600; Options.NodeKey), and
// every entry carries the public key and the signature over a context
// string and its canonical encoding. A receiver takes a peer's entry
// only if it is newer than what it holds and
//
//   - its signature verifies, and its key is the one pinned for its
//     server: the first key seen per server name is pinned in cluster.db
//     (trust on first use, like SSH known hosts) and never changes by
//     itself; Cluster.Forget (`buddyrec forget`) clears a pin for a
//     replaced server, whose next newer record pins its new key (older
//     copies of the old record are not newer, so they never re-pin the
//     old key);
//   - its version is below 2^63: versions are wall-clock nanoseconds, so
//     a legitimate one stays below until 2262 and following it by one
//     never wraps; a 2^64−1 record cannot freeze a server's view;
//   - its body agrees with its server (Options.CheckRecord; node checks
//     that the body names the server it is filed under).
//
// A refused entry raises AlarmForgedRecord (another key) or
// AlarmBadRecord, naming the server and the member whose key signed it:
// the author, found by the key every member advertises in its meta
// (its node key) and by the pins, not the last hop, since gossip is
// relayed. Our own record is accepted from a peer (to keep our versions
// above what peers remember) only when signed by our key. A server's
// own versions start at max(persisted + 1, wall-clock nanoseconds), so
// they rise across restarts without any peer's help. Entries in
// cluster.db written before signing existed load, but a peer's unsigned
// entry is refused. The limit of trust on first use: a server nobody has
// heard of yet can be claimed first by a forger; its real records then
// raise the alarm on every server, and forget clears it.
//
// # Gone servers
//
// A server gone (dead or left) longer than ForgetAfter (default 30 days)
// is pruned from memory and cluster.db with AlarmForgotten: its cameras
// are no longer adopted, so the bound is the longest outage buddies
// cover and must outlast a hardware replacement. It counts from when
// this node saw the server go, persisted in cluster.db, so a buddy
// restarted during an outage still adopts; a server only heard of while
// gone counts from then (the safe side). A tombstone of its last version
// stays, so a peer's stale copy does not bring it back; a newer version
// (the server returns) does. Pins are kept: forget clears them.
//
// # Names
//
// memberlist reports a second address claiming a known name through
// NotifyConflict. The node keys in both nodes' meta tell a restart on a
// new address (same key: accepted once the old address is declared dead)
// from another server using a taken name (another key). A newcomer that
// meets a live server with its name during Start fails Start with
// "another server named ... is alive at ADDR", unless that address does
// not answer TCP (a crashed earlier incarnation not yet declared dead). A
// running server that hears of a claimant raises AlarmNameConflict with
// the claimant's address; a third server that sees the clash (the usual
// case: the claimant cannot list two members of one name, so it never
// contacts the holder) tells the holder with a name-conflict message. A
// copy of a data_dir, node.key included, is not told apart from a
// restart.
//
// # Clocks
//
// Probe acks carry the acking server's clock (Options.Now). The prober
// estimates the peer's offset as its time minus ours half a round trip
// before the ack (error ≤ rtt/2; samples with rtt/2 above a fifth of the
// limit are skipped). Three samples in a row beyond ClockSkewLimit
// (500 ms) raise AlarmClockSkew naming the peer and its address; three
// within it clear it. Each server judges the peers it probes, so in a
// two-server site both report the other: the alarm says the clocks
// disagree, NTP on every server says which is right.
//
// # Logs
//
// Complaints about what peers send (undecodable packets, another key,
// refused records) are logged once per 10 s per kind, with the number
// suppressed, so garbage sent to the gossip port cannot flood the log.
//
// # Secrets
//
// SetSecrets sends this server's secrets over TCP only to the alive
// servers named in Options.Buddies: on change, when a buddy joins, and
// every SecretsInterval (30 s) so one that missed an update catches up.
// Receivers persist them (cluster.db is 0600) and never log them. Each
// record carries its server's buddy list, so a server taken off a buddy
// list forgets that server's secrets (memory and cluster.db) when the new
// record reaches it. With a
// Key all gossip, TCP included, is AES-GCM encrypted; with Insecure it is
// clear text and Start logs a warning if there are buddies.
//
// # Keys
//
// No Key and not Insecure fails Start. A wrong key (or encrypted against
// plaintext) on either side makes memberlist reject the join with a
// decrypt error; Start returns "gossip key mismatch: ... (check key_file
// ...)" when every configured peer that answered rejected us that way. A
// node that receives undecryptable gossip logs the same hint at error
// level. Gossip also carries the label "buddyrec".
//
// # Timing
//
// Keepalive (K) and FailoverAfter (F) map onto memberlist as:
//
//	ProbeInterval  = K
//	ProbeTimeout   = K/2
//	GossipInterval = K/4
//	SuspicionMult  = max(2, round(F/K) - 2)
//	SuspicionMaxTimeoutMult = 2
//	TCPTimeout     = clamp(10K, 1s, 10s)
//	DeadNodeReclaimTime = 1ns
//
// A crashed peer is declared dead after T ≈ W + K + SuspicionMult×K + G,
// where W ∈ [0, K) waits for the next probe of that peer (longer in big
// clusters, where probes rotate), K is the failed probe, and G ≈ K/4 the
// gossip of the verdict; on average T ≈ F − K/4, at worst about F + K
// (W reaches 2K in a 3-node cluster). With the defaults (K 200ms, F 800ms,
// SuspicionMult 2) that is about 0.7–1.0 s; see BenchmarkDetect. (The
// notes in shared/ measured no false suspicion at K 200ms and
// SuspicionMult 2 under CPU load, and memberlist's awareness stretches
// probe deadlines on a busy node.) In clusters above 10 nodes memberlist
// stretches the
// suspicion by log10(n), and with 4+ nodes it starts at 2× and shrinks as
// other nodes confirm the suspicion (SuspicionMaxTimeoutMult 2 bounds the
// worst case at twice the nominal). F must be at least 3K. A hung
// (SIGSTOPped) process is declared dead like a crash; when it resumes it
// hears of its death and refutes it, and peers report it alive again.
//
// DeadNodeReclaimTime 1ns lets a server restarted on a new address take
// its name back as soon as its old incarnation is dead. If it restarts
// before peers noticed the death, they reject the new address
// (NotifyConflict) until the old one is declared dead, then contact the
// new address themselves, so it is accepted about F later.
//
// # States
//
// memberlist's NotifyLeave cannot tell a crash from a graceful leave (its
// Node.State is never set), so Close first publishes a final version of
// this server's record marked "left" and sends it over TCP to every alive
// member, then calls Leave and Shutdown. Peers report a departed server
// "left" when its latest record carries that mark and "dead" otherwise;
// the mark is replicated and persisted like the record, and a restarted
// server clears it. "suspect" is reported only when this node's own probe
// of the peer failed (memberlist logs it and offers no hook; suspicions
// raised by other nodes are invisible), until the peer answers a probe,
// updates its meta, or is declared dead. Servers known only from records
// or from cluster.db are listed as dead or left with their last known
// address.
//
// # Rejoining
//
// Start tries every Join address at once (one TCP timeout at most). While
// no peer is alive it keeps retrying them every max(5K, 1s); it also
// retries the last addresses of dead members, so a partition heals even
// after memberlist stops gossiping to the dead (30 s). A join is a full
// push/pull of every record, so only three live servers, chosen for each
// dead one by rendezvous hashing over the names of the live, retry it:
// each side of a partition chooses its own three, and a large site does
// not pay a state exchange per server per second for every dead member.
package buddy
