package config

// keys is every key the loader accepts, by table: "" is the top level,
// whose tables ("listen", "camera", ...) are keys too; "camera", "psim" and
// "aspect" are arrays of tables. An aspect also keeps any other key as a
// kind-specific parameter.
//
// The decoder rejects every key not listed here, so this table is what the
// loader knows; buddyrec.toml documents each of them with its default, and
// reference_test.go fails when the two differ.
var keys = map[string][]string{
	"":         {"name", "data_dir", "listen", "cluster", "capacity", "failover", "storage", "recorder", "events", "http", "camera", "psim", "aspect"},
	"listen":   {"gossip", "http", "rtsp"},
	"cluster":  {"join", "key_file", "keepalive", "failover_after", "failback", "failback_after", "insecure", "forget_after", "drain_timeout"},
	"capacity": {"cameras", "bitrate_mbps", "viewers"},
	"failover": {"buddies", "cameras", "standby"},
	"storage":  {"segment", "part", "retention", "min_free", "backfill_mbps", "sync_method"},
	"recorder": {"cameras_per_worker", "worker_memory"},
	"events":   {"retention"},
	"http":     {"users_file", "token_file", "cert_file", "key_file", "ca_file"},
	"camera":   {"name", "url", "user", "password", "password_file", "critical", "transport", "bitrate_mbps"},
	"psim":     {"url", "secret_file", "events"},
	"aspect":   {"kind", "name"},
}
