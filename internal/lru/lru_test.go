package lru

import "testing"

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2)
	c.Add("a", 1)
	c.Add("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %t", v, ok)
	}
	c.Add("c", 3) // b is the least recently used
	if _, ok := c.Get("b"); ok {
		t.Error("b kept past the size")
	}
	if got := c.GetOrAdd("a", func() int { return 9 }); got != 1 {
		t.Errorf("GetOrAdd(a) = %d, want the value held", got)
	}
	if got := c.GetOrAdd("d", func() int { return 4 }); got != 4 || c.Len() != 2 {
		t.Errorf("GetOrAdd(d) = %d, len %d", got, c.Len())
	}
	c.Remove("d")
	if _, ok := c.Get("d"); ok || c.Len() != 1 {
		t.Errorf("Remove left d, len %d", c.Len())
	}
}
