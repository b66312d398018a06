package extract

import (
	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/format"
)

// fastSnappy is Parquet's SNAPPY codec with klauspost's fast Snappy
// encoder: parquet.Snappy encodes with klauspost/compress/snappy.Encode,
// its "better" (slower) encoder. The blocks are standard Snappy either way.
type fastSnappy struct{}

var _ compress.Codec = fastSnappy{}

func (fastSnappy) String() string                            { return parquet.Snappy.String() }
func (fastSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }
func (fastSnappy) Encode(dst, src []byte) ([]byte, error)    { return s2.EncodeSnappy(dst, src), nil }
func (fastSnappy) Decode(dst, src []byte) ([]byte, error)    { return parquet.Snappy.Decode(dst, src) }
