package registry

import (
	"context"
	"errors"
	"testing"
)

// TestCheckMaster: a master secret is checked against the active derived
// devices (derive of a device the registry does not know); with none to
// compare with, any master passes.
func TestCheckMaster(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		master, other := canaryMaster(t), canaryMaster(t)
		res, err := f.env.reg.Add(ctx, "rnd", Random())
		if err != nil {
			t.Fatal(err)
		}
		res.Key.Destroy()
		if err := f.env.reg.CheckMaster(ctx, other); err != nil {
			t.Fatalf("no derived device, yet: %v", err)
		}
		if res, err = f.env.reg.Add(ctx, "der", Derived(master, 3)); err != nil {
			t.Fatal(err)
		}
		res.Key.Destroy()
		for _, tt := range []struct {
			name string
			want bool // a mismatch
		}{{"right", false}, {"wrong", true}} {
			m := master
			if tt.want {
				m = other
			}
			var me *MismatchError
			err := f.env.reg.CheckMaster(ctx, m)
			if got := errors.As(err, &me); got != tt.want || (!tt.want && err != nil) {
				t.Errorf("%s master: %v", tt.name, err)
			}
			if tt.want && (me.ID != "der" || me.Epoch != 3) {
				t.Errorf("mismatch names %q at epoch %d", me.ID, me.Epoch)
			}
		}
	})
}
