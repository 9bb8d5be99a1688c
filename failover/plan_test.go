package failover

import (
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"
)

// cams builds cameras from names; a leading "!" marks a critical camera.
func cams(names ...string) []Camera {
	out := make([]Camera, 0, len(names))
	for _, n := range names {
		c := Camera{Name: n}
		if len(n) > 0 && n[0] == '!' {
			c = Camera{Name: n[1:], Critical: true}
		}
		out = append(out, c)
	}
	return out
}

// rated builds one camera with a bitrate.
func rated(name string, critical bool, mbps float64) Camera {
	return Camera{Name: name, Critical: critical, BitrateMbps: mbps}
}

// up is an alive, stable server with the given buddies and cameras.
func up(name string, buddies []string, c []Camera) Server {
	return Server{Name: name, Alive: true, Stable: true, Failback: true, Buddies: buddies, Cameras: c}
}

func down(s Server) Server { s.Alive, s.Stable = false, false; return s }

func unstable(s Server) Server { s.Stable = false; return s }

func sticky(s Server) Server { s.Failback = false; return s }

func recording(s Server, ids ...string) Server { s.Recording = ids; return s }

func draining(s Server) Server { s.Draining = true; return s }

func withCap(s Server, cameras int, mbps float64) Server {
	s.Capacity = Capacity{Cameras: cameras, BitrateMbps: mbps}
	return s
}

func withMode(s Server, mode string) Server { s.Mode = mode; return s }

func names(n ...string) []string { return n }

func TestCompute(t *testing.T) {
	tests := []struct {
		name     string
		servers  []Server
		want     map[string]string // camera id -> owner
		unplaced []Unplaced
	}{
		{
			name: "mirrored both alive record their own",
			servers: []Server{
				up("a", names("b"), cams("1", "2")),
				up("b", names("a"), cams("1")),
			},
			want: map[string]string{"a/1": "a", "a/2": "a", "b/1": "b"},
		},
		{
			name: "drain: a draining server's cameras go to its buddy",
			servers: []Server{
				draining(recording(up("a", names("b"), cams("1", "2")), "a/1", "a/2")),
				recording(up("b", names("a"), cams("1")), "b/1"),
			},
			want: map[string]string{"a/1": "b", "a/2": "b", "b/1": "b"},
		},
		{
			name: "drain: what the buddy has no room for stays on the draining server",
			servers: []Server{
				draining(recording(up("a", names("b"), cams("1", "!2", "3")), "a/1", "a/2", "a/3")),
				recording(withCap(up("b", names("a"), cams("1")), 2, 0), "b/1"),
			},
			// b keeps its own, takes the critical a/2 first, then nothing fits.
			want: map[string]string{"a/1": "a", "a/2": "b", "a/3": "a", "b/1": "b"},
		},
		{
			name: "drain: a draining buddy adopts nothing another candidate can take",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1", "2"))),
				draining(up("b", nil, nil)),
				up("c", nil, nil),
			},
			want: map[string]string{"a/1": "c", "a/2": "c"},
		},
		{
			name: "drain: adopted cameras leave a draining adopter for the next buddy",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1"))),
				draining(recording(up("b", nil, nil), "a/1")),
				up("c", nil, nil),
			},
			want: map[string]string{"a/1": "c"},
		},
		{
			name: "drain: a dead home's camera goes to a draining buddy rather than nowhere",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1"))),
				draining(up("b", nil, nil)),
				withCap(up("c", nil, cams("1")), 1, 0),
			},
			want: map[string]string{"a/1": "b", "c/1": "c"},
		},
		{
			name: "drain: a draining home takes nothing back",
			servers: []Server{
				draining(up("a", names("b"), cams("1"))),
				recording(up("b", nil, nil), "a/1"),
			},
			want: map[string]string{"a/1": "b"},
		},
		{
			name: "undrain: the home, stable again and not draining, takes its cameras back",
			servers: []Server{
				up("a", names("b"), cams("1")),
				recording(up("b", nil, nil), "a/1"),
			},
			want: map[string]string{"a/1": "a"},
		},
		{
			name: "drain: with no candidate but the draining home, it keeps the camera",
			servers: []Server{
				draining(up("a", nil, cams("1"))),
			},
			want: map[string]string{"a/1": "a"},
		},
		{
			name: "mirrored a dead: b adopts all of a",
			servers: []Server{
				down(recording(up("a", names("b"), cams("1", "2")), "a/1", "a/2")),
				recording(up("b", names("a"), cams("1")), "b/1"),
			},
			want: map[string]string{"a/1": "b", "a/2": "b", "b/1": "b"},
		},
		{
			name: "spread servers: standby takes the first failed server whole",
			servers: []Server{
				down(up("a", names("c"), cams("!a1", "a2", "a3"))),
				up("b", names("c"), cams("!b1", "b2", "b3")),
				withCap(up("c", nil, nil), 3, 0),
			},
			want: map[string]string{"a/a1": "c", "a/a2": "c", "a/a3": "c", "b/b1": "b", "b/b2": "b", "b/b3": "b"},
		},
		{
			name: "spread servers: second failure evicts non-critical for critical",
			servers: []Server{
				down(up("a", names("c"), cams("!a1", "a2", "a3"))),
				down(up("b", names("c"), cams("!b1", "b2", "b3"))),
				recording(withCap(up("c", nil, nil), 3, 0), "a/a1", "a/a2", "a/a3"),
			},
			// Critical first (a1, b1), then the camera c already records
			// (a2 before a3 by name), then nothing fits.
			want: map[string]string{"a/a1": "c", "b/b1": "c", "a/a2": "c"},
			unplaced: []Unplaced{
				{"a/a3", "a", ReasonCapacity},
				{"b/b2", "b", ReasonCapacity},
				{"b/b3", "b", ReasonCapacity},
			},
		},
		{
			name: "spread servers: standby keeps what it records over new cameras",
			servers: []Server{
				down(up("a", names("c"), cams("a1", "a2"))),
				down(up("b", names("c"), cams("b1", "b2"))),
				recording(withCap(up("c", nil, nil), 3, 0), "b/b1", "b/b2"),
			},
			want:     map[string]string{"b/b1": "c", "b/b2": "c", "a/a1": "c"},
			unplaced: []Unplaced{{"a/a2", "a", ReasonCapacity}},
		},
		{
			name: "spread cameras: mode critical moves only critical cameras",
			servers: []Server{
				down(withMode(up("a", names("b"), cams("!door", "hall", "yard")), ModeCritical)),
				up("b", nil, nil),
			},
			want: map[string]string{"a/door": "b"},
			unplaced: []Unplaced{
				{"a/hall", "a", ReasonNoCandidateAlive},
				{"a/yard", "a", ReasonNoCandidateAlive},
			},
		},
		{
			name: "spread cameras: buddy claim on a non-critical camera is ignored",
			servers: []Server{
				withMode(up("a", names("b"), cams("!door", "hall")), ModeCritical),
				recording(up("b", nil, nil), "a/hall", "a/door"),
			},
			// a is back and stable: door returns, hall was never b's.
			want: map[string]string{"a/door": "a", "a/hall": "a"},
		},
		{
			name: "N+1 goes to the first buddy",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1"))),
				up("b", nil, nil),
				up("c", nil, nil),
			},
			want: map[string]string{"a/1": "b"},
		},
		{
			name: "N+2: first buddy also dead, second buddy takes over",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1", "2"))),
				down(recording(up("b", nil, nil), "a/1", "a/2")),
				up("c", nil, nil),
			},
			want: map[string]string{"a/1": "c", "a/2": "c"},
		},
		{
			name: "N+2: first buddy comes back, second keeps (no thrash)",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1", "2"))),
				up("b", nil, nil),
				recording(up("c", nil, nil), "a/1", "a/2"),
			},
			want: map[string]string{"a/1": "c", "a/2": "c"},
		},
		{
			name: "N+2: full first buddy passes to the second",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1", "2"))),
				withCap(up("b", nil, cams("own")), 2, 0),
				up("c", nil, nil),
			},
			want: map[string]string{"b/own": "b", "a/1": "b", "a/2": "c"},
		},
		{
			name: "one server is buddy to many",
			servers: []Server{
				down(up("a", names("c"), cams("1"))),
				down(up("b", names("c"), cams("1"))),
				down(up("d", names("c"), cams("1"))),
				up("c", nil, cams("1")),
			},
			want: map[string]string{"a/1": "c", "b/1": "c", "c/1": "c", "d/1": "c"},
		},
		{
			name: "failback: home back but not stable, buddy keeps",
			servers: []Server{
				unstable(up("a", names("b"), cams("1", "2"))),
				recording(up("b", nil, nil), "a/1", "a/2"),
			},
			want: map[string]string{"a/1": "b", "a/2": "b"},
		},
		{
			name: "failback: home stable, cameras return",
			servers: []Server{
				up("a", names("b"), cams("1", "2")),
				recording(up("b", nil, nil), "a/1", "a/2"),
			},
			want: map[string]string{"a/1": "a", "a/2": "a"},
		},
		{
			name: "failback: home stable but short of room, the rest stays with the buddy",
			servers: []Server{
				withCap(up("a", names("b"), cams("1", "!2", "3")), 2, 0),
				recording(up("b", nil, nil), "a/1", "a/2", "a/3"),
			},
			want: map[string]string{"a/2": "a", "a/1": "a", "a/3": "b"},
		},
		{
			name: "failback: a return frees room for another camera waiting to return",
			servers: []Server{
				recording(withCap(up("x", names("y"), cams("1")), 1, 0), "z/1"),
				recording(up("y", nil, nil), "x/1"),
				up("z", names("x"), cams("1")),
			},
			want: map[string]string{"x/1": "x", "z/1": "z"},
		},
		{
			name: "sticky: home stable, buddy keeps",
			servers: []Server{
				sticky(up("a", names("b"), cams("1", "2"))),
				recording(up("b", nil, nil), "a/1", "a/2"),
			},
			want: map[string]string{"a/1": "b", "a/2": "b"},
		},
		{
			name: "sticky: claimant dies, cameras go home",
			servers: []Server{
				sticky(up("a", names("b"), cams("1", "2"))),
				down(recording(up("b", nil, nil), "a/1", "a/2")),
			},
			want: map[string]string{"a/1": "a", "a/2": "a"},
		},
		{
			name: "home alive without claims records its own",
			servers: []Server{
				unstable(up("a", names("b"), cams("1"))),
				up("b", nil, nil),
			},
			want: map[string]string{"a/1": "a"},
		},
		{
			name: "home alive but full: a buddy with room records the rest",
			servers: []Server{
				withCap(up("a", names("b"), cams("1", "2")), 1, 0),
				up("b", nil, nil),
			},
			want: map[string]string{"a/1": "a", "a/2": "b"},
		},
		{
			name: "capacity by bitrate",
			servers: []Server{
				down(up("a", names("c"), []Camera{rated("1", false, 4), rated("2", false, 4), rated("3", true, 4)})),
				withCap(up("c", nil, nil), 0, 10),
			},
			want:     map[string]string{"a/3": "c", "a/1": "c"},
			unplaced: []Unplaced{{"a/2", "a", ReasonCapacity}},
		},
		{
			name: "capacity by bitrate skips a big camera for a small one",
			servers: []Server{
				down(up("a", names("c"), []Camera{rated("1", false, 6), rated("2", false, 6), rated("3", false, 4)})),
				withCap(up("c", nil, nil), 0, 10),
			},
			want:     map[string]string{"a/1": "c", "a/3": "c"},
			unplaced: []Unplaced{{"a/2", "a", ReasonCapacity}},
		},
		{
			name: "bitrate sums are exact to the kbit/s",
			servers: []Server{
				withCap(up("a", nil, []Camera{rated("1", false, 0.1), rated("2", false, 0.1), rated("3", false, 0.1)}), 0, 0.3),
			},
			want: map[string]string{"a/1": "a", "a/2": "a", "a/3": "a"},
		},
		{
			name: "both limits apply",
			servers: []Server{
				withCap(up("a", nil, []Camera{rated("1", false, 1), rated("2", false, 1), rated("3", false, 1)}), 2, 100),
			},
			want:     map[string]string{"a/1": "a", "a/2": "a"},
			unplaced: []Unplaced{{"a/3", "a", ReasonCapacity}},
		},
		{
			name: "unplaced reasons",
			servers: []Server{
				down(up("lone", nil, cams("1"))),
				down(up("ghost", names("nobody"), cams("1"))),
				down(up("pair", names("deadbuddy"), cams("1"))),
				down(up("deadbuddy", nil, nil)),
				down(up("busy", names("full"), cams("1"))),
				withCap(up("full", nil, cams("own")), 1, 0),
			},
			want: map[string]string{"full/own": "full"},
			unplaced: []Unplaced{
				{"busy/1", "busy", ReasonCapacity},
				{"ghost/1", "ghost", ReasonNoCandidateAlive},
				{"lone/1", "lone", ReasonNoCandidateAlive},
				{"pair/1", "pair", ReasonNoCandidateAlive},
			},
		},
		{
			name: "dead claimants are ignored",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1"))),
				up("b", nil, nil),
				down(recording(up("c", nil, nil), "a/1")),
			},
			want: map[string]string{"a/1": "b"},
		},
		{
			name: "claims by non-candidates and unknown ids are ignored",
			servers: []Server{
				down(up("a", names("b"), cams("1"))),
				up("b", nil, nil),
				recording(up("x", nil, nil), "a/1", "nope/1", "", "a/"),
			},
			want: map[string]string{"a/1": "b"},
		},
		{
			name: "double claim after partition: home wins",
			servers: []Server{
				sticky(recording(up("a", names("b"), cams("1")), "a/1")),
				recording(up("b", nil, nil), "a/1"),
			},
			want: map[string]string{"a/1": "a"},
		},
		{
			name: "double claim while home dead: higher priority buddy wins",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1", "2"))),
				recording(up("c", nil, nil), "a/1", "a/2"),
				recording(up("b", nil, nil), "a/2", "a/1"),
			},
			want: map[string]string{"a/1": "b", "a/2": "b"},
		},
		{
			name: "claimant without room gives way to the next candidate",
			servers: []Server{
				down(up("a", names("b", "c"), cams("1", "2"))),
				up("b", nil, nil),
				recording(withCap(up("c", nil, cams("!own")), 2, 0), "a/1", "a/2", "c/own"),
			},
			want:     map[string]string{"c/own": "c", "a/1": "c", "a/2": "b"},
			unplaced: nil,
		},
		{
			name: "buddy lists skip self, repeats and unknown names",
			servers: []Server{
				down(up("a", names("a", "zz", "b", "b", "c"), cams("1"))),
				down(up("b", nil, nil)),
				up("c", nil, nil),
			},
			want: map[string]string{"a/1": "c"},
		},
		{
			name: "duplicate server names are invalid, others unaffected",
			servers: []Server{
				up("a", nil, cams("1")),
				up("a", nil, cams("2")),
				down(up("b", names("a", "c"), cams("1"))),
				up("c", nil, nil),
			},
			want: map[string]string{"b/1": "c"},
			unplaced: []Unplaced{
				{"a/1", "a", ReasonInvalid},
				{"a/2", "a", ReasonInvalid},
			},
		},
		{
			name: "colliding ids and nonsense bitrates are invalid",
			servers: []Server{
				up("a", nil, []Camera{{Name: "b/c"}, {Name: "x", BitrateMbps: math.NaN()}, {Name: "y", BitrateMbps: -1}, {Name: "ok"}}),
				up("a/b", nil, cams("c")),
				up("d", nil, cams("1", "1")),
			},
			want: map[string]string{"a/ok": "a"},
			unplaced: []Unplaced{
				{"a/b/c", "a", ReasonInvalid},
				{"a/b/c", "a/b", ReasonInvalid},
				{"a/x", "a", ReasonInvalid},
				{"a/y", "a", ReasonInvalid},
				{"d/1", "d", ReasonInvalid},
			},
		},
		{
			name: "bad capacities mean unlimited",
			servers: []Server{
				withCap(up("a", nil, []Camera{rated("1", false, 5), rated("2", false, 5)}), -3, math.Inf(1)),
				withCap(up("b", nil, []Camera{rated("1", false, 5)}), 0, math.NaN()),
			},
			want: map[string]string{"a/1": "a", "a/2": "a", "b/1": "b"},
		},
		{
			name: "empty site",
			want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(Input{Servers: tt.servers})
			if !maps.Equal(p.Owner, tt.want) {
				t.Errorf("Owner:\n got %v\nwant %v", p.Owner, tt.want)
			}
			if !slices.Equal(p.Unplaced, tt.unplaced) {
				t.Errorf("Unplaced:\n got %v\nwant %v", p.Unplaced, tt.unplaced)
			}
			for id := range p.Owner {
				if _, ok := p.Home[id]; !ok {
					t.Errorf("Home has no entry for %s", id)
				}
			}
			if len(p.Home) != len(p.Owner) {
				t.Errorf("Home has %d entries, Owner %d", len(p.Home), len(p.Owner))
			}
		})
	}
}

func TestComputeDoesNotModifyInput(t *testing.T) {
	servers := []Server{
		down(up("b", names("c", "a"), cams("z", "!y", "x"))),
		recording(up("a", nil, cams("2", "1")), "b/x", "a/2"),
		up("c", nil, nil),
	}
	before := clone(servers)
	Compute(Input{Servers: servers})
	if !reflect.DeepEqual(servers, before) {
		t.Fatalf("Compute changed its input:\n got %+v\nwant %+v", servers, before)
	}
}

func TestPlanAccessors(t *testing.T) {
	p := Compute(Input{Servers: []Server{
		down(up("a", names("c"), cams("2", "1"))),
		down(up("b", names("c"), cams("1"))),
		up("c", nil, cams("own")),
		up("d", nil, cams("1")),
	}})
	if got, want := p.For("c"), names("a/1", "a/2", "b/1", "c/own"); !slices.Equal(got, want) {
		t.Errorf("For(c) = %v, want %v", got, want)
	}
	if got := p.For("a"); len(got) != 0 {
		t.Errorf("For(a) = %v, want none", got)
	}
	wantAdopted := map[string][]string{"a": names("a/1", "a/2"), "b": names("b/1")}
	if got := p.AdoptedBy("c"); !reflect.DeepEqual(got, wantAdopted) {
		t.Errorf("AdoptedBy(c) = %v, want %v", got, wantAdopted)
	}
	if got := p.AdoptedBy("d"); len(got) != 0 {
		t.Errorf("AdoptedBy(d) = %v, want none", got)
	}
	if !p.Equal(p) {
		t.Error("plan not Equal to itself")
	}
	if (Plan{}).For("x") != nil || len((Plan{}).AdoptedBy("x")) != 0 {
		t.Error("zero Plan should assign nothing")
	}
}

func TestDiff(t *testing.T) {
	site := []Server{
		up("a", names("c"), cams("1", "2")),
		up("b", names("c"), cams("1")),
		up("c", nil, cams("own")),
	}
	prev := Compute(Input{Servers: site})
	site[0] = down(site[0])
	site[2] = recording(site[2], prev.For("c")...)
	next := Compute(Input{Servers: site})

	tests := []struct {
		self        string
		start, stop []string
	}{
		{"c", names("a/1", "a/2"), nil},
		{"a", nil, names("a/1", "a/2")},
		{"b", nil, nil},
	}
	for _, tt := range tests {
		start, stop := Diff(prev, next, tt.self)
		if !slices.Equal(start, tt.start) || !slices.Equal(stop, tt.stop) {
			t.Errorf("Diff(%s) = start %v stop %v, want start %v stop %v", tt.self, start, stop, tt.start, tt.stop)
		}
	}
	if next.Equal(prev) {
		t.Error("plans after a failure compare Equal to before")
	}
	if start, stop := Diff(next, next, "c"); start != nil || stop != nil {
		t.Errorf("Diff of a plan with itself = %v, %v", start, stop)
	}
}

// clone deep-copies servers so tests can shuffle without aliasing.
func clone(in []Server) []Server {
	out := make([]Server, len(in))
	for i, s := range in {
		s.Buddies = slices.Clone(s.Buddies)
		s.Cameras = slices.Clone(s.Cameras)
		s.Recording = slices.Clone(s.Recording)
		out[i] = s
	}
	return out
}

// TestServerEqualSeesEveryField: a change of any field of a Server makes
// Equal false, so a caller that caches a plan by comparing its inputs
// (control's standby placement) never keeps a stale one. A field added
// to Server and not to Equal fails here.
func TestServerEqualSeesEveryField(t *testing.T) {
	base := func() Server {
		return Server{Name: "a", Alive: true, Buddies: []string{"b"}, Mode: ModeAll,
			Cameras: []Camera{{Name: "cam1", BitrateMbps: 2}}, Recording: []string{"a/cam1"}}
	}
	if !base().Equal(base()) {
		t.Fatal("a server differs from its copy")
	}
	typ := reflect.TypeOf(Server{})
	for i := range typ.NumField() {
		s := base()
		f := reflect.ValueOf(&s).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Struct: // Capacity
			f.Field(0).SetInt(f.Field(0).Int() + 1)
		case reflect.Slice:
			f.Set(reflect.Append(f, f.Index(0)))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", typ.Field(i).Name, f.Kind())
		}
		if base().Equal(s) {
			t.Errorf("Equal does not see a change of %s", typ.Field(i).Name)
		}
	}
}
