// Package buddy keeps a recording server's membership in its site: who is
// alive (hashicorp/memberlist heartbeats), every server's replicated
// Record, and the secrets a server hands to its buddies, the servers that
// take over its cameras when it fails.
//
// # Records
//
// Every server owns one Record (an opaque Body plus a Version). SetRecord
// replicates it to every member: piggybacked on gossip when it fits in a
// UDP packet (≤ 1 KiB encoded), over TCP to each alive member otherwise,
// to each newcomer when it joins, and by memberlist's push/pull
// anti-entropy (every 15 s, on join) which carries every record known,
// including those of dead servers. The higher Version wins. Versions are
// max(previous+1, wall-clock nanoseconds), and a server that sees a peer
// holding a higher version of its own record republishes above it, so a
// restarted server, even one that lost its state dir, continues upward.
// Records received are persisted in StateDir/cluster.db (bbolt) by a
// background writer, so a server restarted during an outage still knows
// the whole site, including servers that are down.
//
// Gossip is not compressed (memberlist's EnableCompression is off): its
// LZW allocates a 16 KiB table for every packet, which at a 50 ms gossip
// tick was most of the gossip CPU and made 100 members in one process flap.
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
// address and meta.
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
