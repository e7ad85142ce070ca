package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// seededSQLite opens a migrated SQLite store in a temp dir with the
// fixture seeded.
func seededSQLite(t *testing.T) (*sqlstore.Store, *storetest.Fixture) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+t.TempDir()+"/ladle.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, storetest.Seed(t, st)
}

// An import whose body takes longer to arrive than the server's
// ReadTimeout is not cut off: the import route sets a read deadline of its
// own (ImportReadTimeout) and streams the rows as they come.
func TestImportOutlivesServerReadTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, fix := seededSQLite(t)
	token, hash := auth.NewAPIToken()
	if err := st.CreateAPIToken(ctx, &ladle.APIToken{RestaurantID: fix.Restaurant.ID, UserID: fix.Owner.ID, Name: "t"}, hash); err != nil {
		t.Fatal(err)
	}
	// The server's ReadTimeout is 300 ms; the bodies below take about 1.5 s.
	serve := func(importTimeout time.Duration) string {
		mux := http.NewServeMux()
		httpapi.RegisterAdmin(mux, httpapi.AdminDeps{Store: st, Campaigns: campaign.NewService(st, nil), ImportTimeout: importTimeout})
		srv := &http.Server{Handler: mux, ReadTimeout: 300 * time.Millisecond, ReadHeaderTimeout: time.Second}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String() + "/api/v1/admin/restaurants/" + fix.Restaurant.Slug + "/customers/import"
	}
	slowImport := func(url, prefix string) (int, []byte, time.Duration) {
		pr, pw := io.Pipe()
		go func() {
			fmt.Fprintln(pw, "email,name,marketing_opt_in")
			for i := range 15 {
				time.Sleep(100 * time.Millisecond)
				if _, err := fmt.Fprintf(pw, "%s%02d@example.com,Slow %d,true\n", prefix, i, i); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", url, pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/csv")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("import cut off after %v: %v", time.Since(start), err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		pr.CloseWithError(io.ErrClosedPipe)
		return resp.StatusCode, raw, time.Since(start)
	}

	code, raw, took := slowImport(serve(0), "slow")
	var rep campaign.ImportReport
	if code != 200 || json.Unmarshal(raw, &rep) != nil || rep.Imported != 15 {
		t.Fatalf("after %v: %d %s", took, code, raw)
	}
	if took < time.Second {
		t.Fatalf("the body arrived in %v: the test proves nothing", took)
	}

	// Past the import's own deadline the answer is a clear 400 that says
	// where the body stopped, and the rows before it are kept.
	code, raw, took = slowImport(serve(550*time.Millisecond), "cut")
	var p struct{ Code, Detail string }
	if code != 400 || json.Unmarshal(raw, &p) != nil || p.Code != "body_incomplete" {
		t.Fatalf("after %v: %d %s", took, code, raw)
	}
	n, err := st.AudienceSize(ctx, fix.Restaurant.ID, ladle.Audience{}, time.Now())
	if err != nil || n < 15+3 || n >= 15+15 {
		t.Fatalf("audience after the cut import: %d (%v); want the 15 of the first and some of the second: %s", n, err, p.Detail)
	}
}
