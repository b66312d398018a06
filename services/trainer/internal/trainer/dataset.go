package trainer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/featurefile"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/model"
)

// ReadRows decodes a features Parquet file (libs/featurefile) that has
// rows. Errors describe bad input: no retry fixes them.
func ReadRows(data []byte) ([]features.Row, error) {
	rows, err := featurefile.Read(data)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errors.New("the features file has no rows")
	}
	return rows, nil
}

// Dataset is the time-based split of the labelled rows: the model trains on
// the earlier snapshot dates and is evaluated on the latest ones.
type Dataset struct {
	Train, Holdout           []features.Row
	TrainDates, HoldoutDates []string
	// Embargoed counts training rows dropped because their label window
	// reaches into the holdout period.
	Embargoed int
}

// Split puts the latest ⌈fraction · dates⌉ snapshot dates (at least one, and
// at least one date left to train on) in the holdout, never a random sample.
// Training rows whose label window [s, s+embargoDays) reaches the first
// holdout date are dropped: when that model would have been trained, their
// labels were not known yet.
func Split(rows []features.Row, fraction float64, embargoDays int) (Dataset, error) {
	if !(fraction > 0 && fraction < 1) {
		return Dataset{}, fmt.Errorf("holdout fraction %v is not between 0 and 1", fraction)
	}
	seen := map[string]bool{}
	for i, r := range rows {
		if _, err := time.Parse(features.DateLayout, r.SnapshotDate); err != nil {
			return Dataset{}, fmt.Errorf("row %d (asset %d): snapshot_date %q is not YYYY-MM-DD", i, r.AssetID, r.SnapshotDate)
		}
		if r.Label != 0 && r.Label != 1 {
			return Dataset{}, fmt.Errorf("row %d (asset %d, %s): label %d is not 0 or 1 (a scoring file passed as training?)",
				i, r.AssetID, r.SnapshotDate, r.Label)
		}
		seen[r.SnapshotDate] = true
	}
	dates := make([]string, 0, len(seen))
	for d := range seen {
		dates = append(dates, d)
	}
	slices.Sort(dates) // YYYY-MM-DD sorts by time
	if len(dates) < 2 {
		return Dataset{}, fmt.Errorf("a time-based split needs at least two snapshot dates, the training file has %d (%s)",
			len(dates), strings.Join(dates, ", "))
	}
	nHold := int(math.Ceil(fraction * float64(len(dates))))
	nHold = max(1, min(nHold, len(dates)-1))
	ds := Dataset{TrainDates: dates[:len(dates)-nHold], HoldoutDates: dates[len(dates)-nHold:]}
	first, _ := time.Parse(features.DateLayout, ds.HoldoutDates[0])
	cutoff := first.AddDate(0, 0, -embargoDays).Format(features.DateLayout)
	for _, r := range rows {
		switch {
		case r.SnapshotDate >= ds.HoldoutDates[0]:
			ds.Holdout = append(ds.Holdout, r)
		case embargoDays > 0 && r.SnapshotDate > cutoff:
			ds.Embargoed++
		default:
			ds.Train = append(ds.Train, r)
		}
	}
	if len(ds.Train) == 0 {
		return Dataset{}, fmt.Errorf("no training rows left: every snapshot before the holdout (%s…) is within the %d-day label embargo",
			ds.HoldoutDates[0], embargoDays)
	}
	kept := map[string]bool{}
	for _, r := range ds.Train {
		kept[r.SnapshotDate] = true
	}
	ds.TrainDates = slices.DeleteFunc(ds.TrainDates, func(d string) bool { return !kept[d] })
	return ds, nil
}

// Matrix is the model inputs and 0/1 labels of rows.
func Matrix(rows []features.Row) ([][]float64, []float64) {
	X := make([][]float64, len(rows))
	y := make([]float64, len(rows))
	for i, r := range rows {
		X[i] = model.Inputs(r)
		y[i] = float64(r.Label)
	}
	return X, y
}

// Positives counts the rows labelled 1.
func Positives(rows []features.Row) int {
	n := 0
	for _, r := range rows {
		if r.Label == 1 {
			n++
		}
	}
	return n
}
