// Package bench measures the trainer's learners on a seeded synthetic fleet
// and exports the exact time-based split for compare_sklearn.py, so that
// scikit-learn trains and is evaluated on the same rows:
//
//	CMMSFLOW_TEST_DATABASE_URL=... go test -run '^$' -bench Train -benchtime 5x ./services/trainer/bench/
//	/usr/bin/python3 services/trainer/bench/compare_sklearn.py services/trainer/bench/out/split.csv
//
// The benchmark runs only with -bench. BENCH_ASSETS (default 3000, read by
// libs/benchscale) sizes the fleet, BENCH_OUT names the CSV. BenchmarkScale
// is the trainer's stage of make bench's scale curve.
package bench

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/benchpair"
	"github.com/cmmsflow/cmmsflow/libs/benchscale"
	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainertest"
)

var asOf = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

var (
	splitOnce sync.Once
	split     trainer.Dataset
)

// dataset seeds the fleet, builds its features, splits them as the trainer
// does (latest 20% of snapshot dates held out, 90-day label embargo) and
// writes the split CSV.
func dataset(b *testing.B) trainer.Dataset {
	b.Helper()
	splitOnce.Do(func() {
		assets := benchscale.Sized(b, benchscale.Size{Assets: 3000}).Assets
		ctx := context.Background()
		pool := pgtest.New(b)
		started := time.Now()
		if _, err := fleet.Seed(ctx, pool, fleet.SeedOptions{Seed: 42, Now: asOf, Assets: assets, Years: 3}); err != nil {
			b.Fatal(err)
		}
		rows, _, err := trainertest.Build(ctx, pool, trainertest.Options{AsOf: asOf, Snapshots: 24})
		if err != nil {
			b.Fatal(err)
		}
		split, err = trainer.Split(rows, 0.2, features.DefaultLabelWindowDays)
		if err != nil {
			b.Fatal(err)
		}
		out := os.Getenv("BENCH_OUT")
		if out == "" {
			out = filepath.Join("out", "split.csv")
		}
		if err := writeCSV(out, split); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "bench: %d assets, %d train rows (%d dates), %d holdout rows (%d dates), %d embargoed; built in %s; split written to %s\n",
			assets, len(split.Train), len(split.TrainDates), len(split.Holdout), len(split.HoldoutDates), split.Embargoed,
			time.Since(started).Round(time.Millisecond), out)
	})
	if len(split.Train) == 0 {
		b.Fatal("no dataset (building it failed)")
	}
	return split
}

// writeCSV writes the model inputs, the label and the side of the split.
func writeCSV(name string, ds trainer.Dataset) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(append(append([]string{"split", "snapshot_date"}, model.InputNames()...), "label"))
	for _, part := range []struct {
		name string
		rows []features.Row
	}{{"train", ds.Train}, {"holdout", ds.Holdout}} {
		for _, r := range part.rows {
			rec := []string{part.name, r.SnapshotDate}
			for _, v := range model.Inputs(r) {
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			}
			_ = w.Write(append(rec, strconv.Itoa(int(r.Label))))
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// BenchmarkTrain times each learner's fit on the training split and reports
// its holdout ROC AUC (custom metric "auc"); a JSON line per learner goes
// to stderr for docs/benchmarks.md.
func BenchmarkTrain(b *testing.B) {
	ds := dataset(b)
	X, y := trainer.Matrix(ds.Train)
	Xh, yh := trainer.Matrix(ds.Holdout)
	for _, kind := range []model.Kind{model.GBT, model.Logistic} {
		b.Run(string(kind), func(b *testing.B) {
			var m *model.Model
			var best time.Duration
			for b.Loop() {
				started := time.Now()
				var err error
				m, err = model.Train(model.InputNames(), X, y, model.Options{Kind: kind})
				if err != nil {
					b.Fatal(err)
				}
				if d := time.Since(started); best == 0 || d < best {
					best = d
				}
			}
			p, err := m.PredictAll(Xh)
			if err != nil {
				b.Fatal(err)
			}
			e, err := model.Evaluate(yh, p)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(e.ROCAUC, "auc")
			line, _ := json.Marshal(map[string]any{
				"learner": "go-" + string(kind), "params": params(m), "roc_auc": e.ROCAUC, "pr_auc": e.PRAUC, "brier": e.Brier, "ece": e.ECE,
				"train_seconds_best": best.Seconds(), "rows_train": len(ds.Train), "rows_holdout": len(ds.Holdout),
			})
			learnerLines.Add(string(line))
		})
	}
}

// learnerLines are BenchmarkTrain's JSON lines (one per learner and run,
// read by make bench's report), printed by TestMain after every benchmark:
// printed from inside a benchmark, they would split the result line that
// go test writes around each run (-count > 1).
var learnerLines lines

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) Add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, s)
}

func TestMain(m *testing.M) {
	objstoretest.ServeIfChild()
	code := m.Run()
	for _, l := range learnerLines.l {
		fmt.Fprintln(os.Stderr, l)
	}
	os.Exit(code)
}

func params(m *model.Model) map[string]any {
	if m.LogisticModel != nil {
		return map[string]any{"newton_steps": m.LogisticModel.Steps, "l2": m.LogisticModel.L2}
	}
	g := m.GBTModel
	return map[string]any{"trees": len(g.Trees), "learning_rate": g.LearningRate, "max_depth": g.MaxDepth, "max_bins": g.MaxBins}
}

// BenchmarkScale is the trainer's stage of the scale curve (make bench's
// scale step, libs/benchscale): the trainer's step (Handler.Step: read the
// training features from the bucket, split them, fit the default logistic
// model, evaluate it on the holdout, write its artifact and training
// profile, gate it; the registration, in the delivery's transaction, left
// out) beside a plain read of the same object (its download and Parquet
// decode, trainer.ReadRows), in interleaved pairs with each side's peak
// memory. The features are those featurejob would build for BENCH_ASSETS
// assets with BENCH_WORK_ORDERS work orders over three years
// (trainertest.Synthetic: one row per asset and monthly snapshot, 22), put
// once in a bucket emulator in a child process (objstoretest.Subprocess).
// Skipped unless BENCH_WORK_ORDERS is set.
//
//	BENCH_WORK_ORDERS=1000000 go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 5 ./services/trainer/bench/
func BenchmarkScale(b *testing.B) {
	size := benchscale.PointSize(b)
	b.Run(benchscale.Key(benchscale.KeyWorkOrders, size.WorkOrders), func(b *testing.B) {
		store := objstoretest.Subprocess(b)
		obj := putFeatures(b, store, size)
		var cfg trainer.Config
		if err := config.LoadFrom(context.Background(), &cfg, map[string]string{"DATABASE_URL": "postgres://unused"}); err != nil {
			b.Fatal(err)
		}
		h, err := trainer.New(cfg, pgtest.New(b), store, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		ev := eventingtest.Event(b, events.FeaturesBuilt, "bench", events.ETLMLTraining,
			&eventsv1.FeaturesBuilt{SnapshotDate: asOf.Format(features.DateLayout), Engine: "local", Training: obj})
		pair := &benchpair.Pair{Items: float64(obj.Rows), Unit: "rows", Memory: true, Processes: []int{pgtest.ServerPID(b)},
			Ours: benchpair.Side{Run: func(b *testing.B) {
				if res, err := h.Step(ctx, ev); err != nil || res.Figures["rows_train"] == 0 {
					b.Fatalf("step: %+v (%v)", res.Figures, err)
				}
			}},
			Base: benchpair.Side{Run: func(b *testing.B) {
				data, err := store.Get(ctx, obj.Name)
				if err != nil {
					b.Fatal(err)
				}
				if rows, err := trainer.ReadRows(data); err != nil || int64(len(rows)) != obj.Rows {
					b.Fatalf("read %d rows (%v), want %d", len(rows), err, obj.Rows)
				}
			}},
		}
		b.Run("train_vs_read", pair.Run)
	})
}

// putFeatures writes the training features of the fleet of size to store.
func putFeatures(b *testing.B, store *objstore.Store, size benchscale.Size) *eventsv1.StoredObject {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := "runs/bench/features/" + features.TrainingObject
	w := store.Create(ctx, name, "application/vnd.apache.parquet")
	cw := &objstore.CountingWriter{W: w}
	n, err := trainertest.WriteParquet(cw, trainertest.Synthetic(size.Assets, size.WorkOrders/size.Assets, asOf))
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		b.Fatalf("write the features: %v", err)
	}
	return &eventsv1.StoredObject{Name: name, Uri: store.URI(name), Rows: n, Bytes: cw.N}
}
