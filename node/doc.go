// Package node runs one buddyrec server: it wires the config to storage, the
// camera recorders, the buddy cluster, the planner, the event log, the
// webhook outbox and the HTTP API, and runs the control loop that turns the
// planner's answer into pipelines started and stopped.
//
// Data flows one way: camera → recorder → storage; membership → planner →
// recorder. Nothing on the recording path waits for the control loop, the
// HTTP server, a webhook or gossip.
//
// # Lifecycle of long-lived parts
//
// Every part that outlives a call — [Node] itself, the buddy cluster
// ([buddy.Cluster]), the live re-stream ([live.Server]), the relay
// ([relay.Site]), the browser view ([view.Server]), the pipelines
// ([recorder.Manager]), the webhook outbox ([webhook.Outbox]), the event log
// ([events.Log]) and the store ([storage.Store]) — has one shape, so that
// whoever owns one starts and stops it the same way and a test stops it
// clean without reaching into its internals:
//
//   - Construct: New, Open or Start binds what can fail (files, locks,
//     ports) and returns a usable value or an error, having released
//     whatever it took. A part with background work needs a goroutine either
//     of its own, started by Start(ctx, ...) and ended when ctx ends, or of
//     its owner's, Run(ctx).
//   - Run(ctx) does the background work until ctx ends or Close is called,
//     and returns only once every goroutine it started has returned; an end
//     by Close is not an error. It is called at most once; called after
//     Close it returns at once.
//   - Close is the one stop path: it ends the background work, waits for it
//     and releases what the constructor took. For a part made by Start,
//     the end of Start's ctx leads to the same teardown. Close is
//     idempotent and safe before Run, or when Run never runs; it returns an
//     error only when releasing can fail to persist something (a database
//     file). After Close, a part starts nothing new: Set starts no
//     pipeline, Subscribe returns a closed channel, Run returns at once.
//
// TestLifecycle (lifecycle_test.go) holds each of these parts to this
// shape, one row of its table a part.
//
// Node.Run's end is the node's stop path, in this order: what serves
// others stops first (HTTP, the live re-stream, the views), then the
// pipelines (segments closed and indexed), then the cluster (the leave is
// announced), and last the outbox, the store and the event log, once their
// Run has returned. [buddy.Cluster.Shutdown] is not a second way out but a
// crash (no leave is announced), for tests and benchmarks of failover.
package node
