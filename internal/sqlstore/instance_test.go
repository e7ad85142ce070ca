package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
)

// Every store on one database shares its instance id, and another database
// has another: shared caches rely on both.
func TestInstanceID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := "sqlite:" + filepath.Join(t.TempDir(), "ladle.db")
	a, b, other := open(t, path), open(t, path), openSQLite(t)
	idA, err := a.InstanceID(ctx)
	if err != nil || len(idA) != 32 {
		t.Fatalf("instance id %q, %v", idA, err)
	}
	idB, _ := b.InstanceID(ctx)
	idOther, _ := other.InstanceID(ctx)
	if idB != idA {
		t.Fatalf("two stores on one database disagree: %s vs %s", idA, idB)
	}
	if idOther == idA {
		t.Fatal("two databases share an instance id")
	}
	t.Run("postgres", func(t *testing.T) {
		pa, pb := openPostgres(t), openPostgres(t)
		ia, err := pa.InstanceID(ctx)
		ib, _ := pb.InstanceID(ctx)
		if err != nil || len(ia) != 32 || ia == ib || ia == idA {
			t.Fatalf("postgres instance ids %q %q, %v", ia, ib, err)
		}
	})
}
