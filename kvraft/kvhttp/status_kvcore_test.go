package kvhttp

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/pennyhq/penny/kvraft"
)

// TestStatusOfStoreRefusals checks the statuses of the store's quota and
// membership refusals.
func TestStatusOfStoreRefusals(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: store quota of 1 bytes reached", kvraft.ErrNoSpace), http.StatusInsufficientStorage},
		{fmt.Errorf("%w: would lose quorum", kvraft.ErrReconfig), http.StatusConflict},
		{fmt.Errorf("%w: x", kvraft.ErrPeerURLExists), http.StatusConflict},
		{fmt.Errorf("%w: x", kvraft.ErrTooLarge), http.StatusRequestEntityTooLarge},
	} {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
