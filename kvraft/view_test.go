package kvraft

import "testing"

func TestMembershipView(t *testing.T) {
	base := func() *membership {
		m := newMembership()
		m.Members[1] = Member{ID: 1, PeerURL: "http://a:2380"}
		m.Members[2] = Member{ID: 2, PeerURL: "http://b:2380"}
		m.Removed[7] = true
		return m
	}
	tests := []struct {
		name   string
		change func(*membership)
		same   bool
	}{
		{"unchanged", func(*membership) {}, true},
		{"api url published", func(m *membership) { m.Members[1] = Member{ID: 1, PeerURL: "http://a:2380", APIURL: "http://a:7379"} }, true},
		{"quota set", func(m *membership) { m.QuotaBytes = 1 << 20 }, true},
		{"peer url spelled differently", func(m *membership) { m.Members[2] = Member{ID: 2, PeerURL: "HTTP://B:2380/"} }, true},
		{"member added", func(m *membership) { m.Members[3] = Member{ID: 3, PeerURL: "http://c:2380"} }, false},
		{"member removed", func(m *membership) { delete(m.Members, 2); m.Removed[2] = true }, false},
		{"peer url moved", func(m *membership) { m.Members[2] = Member{ID: 2, PeerURL: "http://c:2380"} }, false},
		{"another id removed", func(m *membership) { m.Removed[8] = true }, false},
	}
	want := base().view()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 { // maps iterate in a new order each time
				m := base()
				tt.change(m)
				if got := m.view(); (got == want) != tt.same {
					t.Fatalf("view %x against %x: same %v, want %v", got, want, got == want, tt.same)
				}
			}
		})
	}
}
