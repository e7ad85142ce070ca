package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/devcluster"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// campaignCluster is an API server (in this process, never killed) and two
// `ladle serve --role worker` OS processes (the test binary re-executed, so
// they can be killed with SIGKILL), sharing PostgreSQL, an external NATS,
// Redis (the shared rate limit) and a loopback SMTP server that counts what
// it accepts.
type campaignCluster struct {
	t       *testing.T // the current subtest
	root    *testing.T // owns the processes
	env     map[string]string
	workers [2]*devcluster.Proc
	args    []string
	api     string // the staff API base, /api/v1/admin/restaurants/demo-kitchen
	token   string
	smtp    *smtptest.Server
	redis   *redis.Client
	rateKey string
}

// the recipients every campaign of the cluster goes to.
const clusterRecipients = 300

func newCampaignCluster(t *testing.T) *campaignCluster {
	t.Helper()
	ctx := context.Background()
	smtpSrv := smtptest.Start(t)
	dbURL := testenv.PostgresSchema(t)
	c := &campaignCluster{t: t, root: t, smtp: smtpSrv, env: map[string]string{
		"LADLE_DATABASE_URL": dbURL,
		"LADLE_NATS_URL":     testenv.NATSURL(t),
		"LADLE_REDIS_URL":    testenv.RedisURL(t),
		"LADLE_SMTP_URL":     smtpSrv.URL(),
		"LADLE_SECRET":       "campaign-cluster-secret-0123456789",
		"LADLE_PUBLIC_URL":   "https://ladle.example",
	}}
	// Short redelivery and lease, so the sends a killed worker had claimed
	// go out again within seconds, not minutes.
	c.args = []string{"--role", "worker", "--ack-wait", "2s", "--campaign-lease", "3s", "--smtp-timeout", "2s",
		"--campaign-workers", "4", "--campaign-rate", "30"}
	base := startLadle(t, c.env, "--role", "api", "--demo")
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	instance, err := st.InstanceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStream(t, c.env["LADLE_NATS_URL"], "LADLE_EVENTS_"+strings.ToUpper(instance[:12])) })
	opt, err := redis.ParseURL(c.env["LADLE_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	c.redis = redis.NewClient(opt)
	prefix := "ladle:" + instance[:12] + ":ratelimit:default:"
	c.rateKey = prefix + "rate"
	t.Cleanup(func() {
		c.redis.Del(context.Background(), prefix+"rate", prefix+"tat", prefix+"slow")
		c.redis.Close()
	})
	for i := range c.workers {
		c.workers[i] = c.startWorker(i)
	}
	c.token = staffToken(t, demo.Slug, demo.StaffEmail, "--database-url", dbURL)
	c.api = base + "/api/v1/admin/restaurants/" + demo.Slug
	var csv strings.Builder
	csv.WriteString("email,name,marketing_opt_in\n")
	for i := range clusterRecipients {
		fmt.Fprintf(&csv, "r%03d@example.com,Recipient %d,true\n", i, i)
	}
	if rep := apiCall(t, "POST", c.api+"/customers/import", c.token, "text/csv", csv.String(), 200); rep["imported"].(float64) != clusterRecipients {
		t.Fatalf("import: %v", rep)
	}
	return c
}

// setRate sets the route's rate in Redis, for every worker process at once.
func (c *campaignCluster) setRate(perSecond int) {
	c.t.Helper()
	if err := c.redis.Set(context.Background(), c.rateKey, perSecond, 0).Err(); err != nil {
		c.t.Fatal(err)
	}
}

// startWorker starts worker process i; it is stopped (SIGTERM) when the
// whole test ends.
func (c *campaignCluster) startWorker(i int) *devcluster.Proc {
	c.t.Helper()
	p, err := devcluster.StartProc(devcluster.ProcSpec{Name: fmt.Sprintf("worker-%d", i+1), Exec: helperExec(c.t),
		Env: c.env, Args: c.args, DataDir: c.root.TempDir()}, time.Minute)
	if err != nil {
		c.t.Fatal(err)
	}
	c.root.Cleanup(func() { p.Stop(20 * time.Second) })
	return p
}

// kill9 kills worker i with SIGKILL and starts a new process in its place.
func (c *campaignCluster) kill9(i int) {
	c.t.Helper()
	c.workers[i].Kill()
	c.workers[i] = c.startWorker(i)
}

// start creates a campaign to everyone and sends it; it returns the id and
// the server's message count before it.
func (c *campaignCluster) start(name string) (string, int) {
	c.t.Helper()
	body := `{"name":"` + name + `","subject":"` + name + ` for {{.Name}}","html":"<p>Hi {{.Name}}</p><a href=\"{{.UnsubscribeURL}}\">unsubscribe</a>","text":"Hi {{.Name}} {{.UnsubscribeURL}}","audience":{"segment":"opted_in"}}`
	cp := apiCall(c.t, "POST", c.api+"/campaigns", c.token, "application/json", body, 201)
	if cp["audience_size"].(float64) != clusterRecipients {
		c.t.Fatalf("audience: %v", cp)
	}
	before := c.smtp.Count()
	id := cp["id"].(string)
	apiCall(c.t, "POST", c.api+"/campaigns/"+id+"/send", c.token, "", "", 200)
	return id, before
}

func (c *campaignCluster) action(id, what string) {
	c.t.Helper()
	apiCall(c.t, "POST", c.api+"/campaigns/"+id+"/"+what, c.token, "", "", 200)
}

// waitStatus polls GET /campaigns/{id} until the status, and returns it.
func (c *campaignCluster) waitStatus(id, status string, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := apiCall(c.t, "GET", c.api+"/campaigns/"+id, c.token, "", "", 200)
		if p["status"] == status {
			return p
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("campaign %s after %v: %v, want %s", id, timeout, p, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mail returns the messages of the campaign (by subject) the server
// accepted, and how many each recipient got.
func (c *campaignCluster) mail(name string) ([]smtptest.Received, map[string]int) {
	var out []smtptest.Received
	per := map[string]int{}
	for _, m := range c.smtp.Messages() {
		if strings.HasPrefix(m.Subject, name+" for ") {
			out = append(out, m)
			per[m.To]++
		}
	}
	return out, per
}

// TestCampaignWorkerProcesses runs campaigns on two worker OS processes:
//
//   - rate: a shared limit of R/s in Redis holds for both together, counted
//     at the SMTP server per aligned second;
//   - kill: one worker or the other is killed with SIGKILL five times during
//     a campaign and restarted each time, the other one running meanwhile:
//     everyone is mailed, and the duplicates are within the window;
//   - pause: paused mid-campaign, nothing reaches the server 2 s after the
//     pause; resumed, everyone exactly once;
//   - cancel: nothing reaches the server 2 s after the cancel.
func TestCampaignWorkerProcesses(t *testing.T) {
	t.Parallel()
	c := newCampaignCluster(t)

	t.Run("rate", func(t *testing.T) {
		c.t = t
		const rate = 30
		c.setRate(rate)
		id, _ := c.start("Paced")
		c.waitStatus(id, "done", 60*time.Second)
		msgs, per := c.mail("Paced")
		exactlyOnceEach(t, per, clusterRecipients)
		// The limiter is a GCRA schedule with burst 1: sends are booked
		// 1/R apart (chunks of one below 40/s), from one schedule in Redis
		// for both processes, against Redis's clock. So the booked times
		// in any aligned window of w seconds number at most R·w. The
		// server sees each send after a delivery delay (a timer's wake-up,
		// the SMTP exchange); while those delays differ by less than k/R,
		// a window can gain at most the k sends booked just before it and
		// delayed into it: R·w + k. The tolerance is k = 2 (66 ms here):
		// on CI's two busy cores one delivery in a run was seen 31 ms
		// later than its neighbour (two arrivals
		// 1.7 ms apart, booked 33 ms apart), which k = 1 assumes never
		// happens. The smallest gap logged below shows how much the delays
		// varied in this run, and the span check after the windows holds
		// the whole run to R/s (within 100 ms over ~10 s).
		var at []time.Time
		for _, m := range msgs {
			at = append(at, m.At)
		}
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		for _, w := range []int{1, 2, 5} {
			counts := map[int64]int{}
			for _, a := range at {
				counts[a.UnixNano()/int64(time.Duration(w)*time.Second)]++
			}
			for win, n := range counts {
				if n > rate*w+2 {
					t.Errorf("%d s window %d: %d messages at the server, limit %d/s", w, win, n, rate)
				}
			}
			if w == 1 {
				t.Logf("per aligned second at the server: %v", sortedCounts(counts))
			}
		}
		minGap := time.Hour
		for i := 1; i < len(at); i++ {
			minGap = min(minGap, at[i].Sub(at[i-1]))
		}
		span := at[len(at)-1].Sub(at[0])
		if want := time.Duration(len(at)-1) * time.Second / rate; span < want-100*time.Millisecond {
			t.Errorf("%d messages in %v at %d/s: the schedule allows no less than %v", len(at), span, rate, want)
		}
		t.Logf("%d messages over %v; smallest gap between two %v (the schedule's is %v)", len(at), span, minGap, time.Second/rate)
	})

	t.Run("kill", func(t *testing.T) {
		c.t = t
		// 25/s: chunks of one, so each process has at most
		// --campaign-workers (4) sends in flight. 300 recipients take 12 s,
		// enough for five kills, each followed by a restart.
		const rate, inFlight, kills = 25, 4, 5
		c.setRate(rate)
		id, _ := c.start("Killed")
		var at []int
		for k := range kills {
			threshold := (k + 1) * clusterRecipients / (kills + 2)
			for {
				_, per := c.mail("Killed")
				if len(per) >= threshold {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			_, per := c.mail("Killed")
			if len(per) >= clusterRecipients {
				t.Fatalf("the campaign was over before kill %d: the test proves nothing", k+1)
			}
			at = append(at, len(per))
			c.kill9(k % 2) // the other worker keeps sending meanwhile
		}
		p := c.waitStatus(id, "done", 90*time.Second)
		msgs, per := c.mail("Killed")
		if len(per) != clusterRecipients || p["sent"].(float64) != clusterRecipients {
			t.Fatalf("%d recipients reached, campaign says %v sent; want %d: someone was skipped", len(per), p["sent"], clusterRecipients)
		}
		dups := len(msgs) - len(per)
		ids := map[string]bool{}
		for _, m := range msgs {
			ids[m.MessageID] = true
		}
		if len(ids) != clusterRecipients {
			t.Errorf("%d distinct Message-IDs for %d recipients", len(ids), clusterRecipients)
		}
		// The window: a kill can repeat only the sends the dying process
		// had handed to the server and not yet recorded, at most its
		// in-flight sends (--campaign-workers × chunk).
		if dups > kills*inFlight {
			t.Fatalf("%d duplicates after %d kills; the window is %d per kill", dups, kills, inFlight)
		}
		t.Logf("killed at %v recipients reached; %d duplicates (window %d per kill, %d in all)", at, dups, inFlight, kills*inFlight)
	})

	t.Run("pause", func(t *testing.T) {
		c.t = t
		id, per := c.stopMidway("Paused", 60, "pause")
		if len(per) >= clusterRecipients {
			t.Fatalf("everything went out before the pause took effect")
		}
		c.action(id, "resume")
		c.waitStatus(id, "done", 60*time.Second)
		_, per = c.mail("Paused")
		exactlyOnceEach(t, per, clusterRecipients)
	})

	t.Run("cancel", func(t *testing.T) {
		c.t = t
		_, per := c.stopMidway("Cancelled", 30, "cancel")
		if len(per) >= clusterRecipients {
			t.Fatalf("everything went out before the cancel took effect")
		}
		exactlyOnceEach(t, per, len(per))
	})
}

// stopMidway sends a campaign at 100/s, pauses or cancels it once after
// recipients were reached, and checks that nothing reaches the server more
// than 2 s after that; it returns the campaign and who was mailed.
func (c *campaignCluster) stopMidway(name string, after int, action string) (string, map[string]int) {
	c.t.Helper()
	c.setRate(100)
	id, _ := c.start(name)
	for {
		if _, per := c.mail(name); len(per) >= after {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.action(id, action)
	stopped := time.Now()
	time.Sleep(3 * time.Second)
	msgs, per := c.mail(name)
	for _, m := range msgs {
		if d := m.At.Sub(stopped); d > 2*time.Second {
			c.t.Errorf("a message reached the server %v after the %s", d, action)
		}
	}
	return id, per
}

func exactlyOnceEach(t *testing.T, per map[string]int, want int) {
	t.Helper()
	if len(per) != want {
		t.Errorf("%d recipients reached, want %d", len(per), want)
	}
	for to, n := range per {
		if n != 1 {
			t.Errorf("%s received %d", to, n)
		}
	}
}

func sortedCounts(m map[int64]int) []int {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// staffToken creates a staff API token for the member of the restaurant
// with `ladle token create` and the given database flags.
func staffToken(t *testing.T, slug, email string, dbArgs ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	args := append([]string{"ladle", "token", "create", "--restaurant", slug, "--email", email}, dbArgs...)
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("token create: %v %s", err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// apiCall makes one staff API request and returns the decoded JSON object;
// a status other than want fails the test, as does an error that is not a
// problem document.
func apiCall(t *testing.T, method, url, bearer, ctype, body string, want int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, raw, want)
	}
	if want >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s %s: error as %s", method, url, resp.Header.Get("Content-Type"))
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}
