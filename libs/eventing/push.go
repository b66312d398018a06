package eventing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// EventarcPubSubType is the CloudEvent type Eventarc uses to deliver a Pub/Sub
// message over HTTP.
const EventarcPubSubType = "google.cloud.pubsub.topic.v1.messagePublished"

// pushEnvelope is the body of a Pub/Sub push request, and the data of an
// Eventarc messagePublished CloudEvent.
type pushEnvelope struct {
	Message *struct {
		Data         []byte            `json:"data"`
		Attributes   map[string]string `json:"attributes"`
		MessageID    string            `json:"messageId"`
		MessageIDAlt string            `json:"message_id"`
		PublishTime  time.Time         `json:"publishTime"`
		PublishAlt   time.Time         `json:"publish_time"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

// structuredEvent is an Eventarc delivery in CloudEvents structured mode.
type structuredEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// DecodePush reads a push request in any of the shapes GCP sends: a plain
// Pub/Sub push body, or an Eventarc messagePublished CloudEvent in binary or
// structured mode. Every error it returns is permanent. Bodies over maxBytes
// are refused.
func DecodePush(r *http.Request, maxBytes int64) (Message, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if err != nil {
		return Message{}, fmt.Errorf("read push body: %w", err)
	}
	if int64(len(body)) > maxBytes {
		return Message{}, Permanent(fmt.Errorf("push body exceeds %d bytes", maxBytes))
	}
	if t := r.Header.Get("Ce-Type"); t != "" && t != EventarcPubSubType {
		return Message{}, Permanent(fmt.Errorf("unsupported Eventarc event type %q", t))
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/cloudevents+json" {
		var se structuredEvent
		if err := json.Unmarshal(body, &se); err != nil {
			return Message{}, Permanent(fmt.Errorf("decode structured CloudEvent: %w", err))
		}
		if se.Type != EventarcPubSubType {
			return Message{}, Permanent(fmt.Errorf("unsupported Eventarc event type %q", se.Type))
		}
		body = se.Data
	}
	return decodeEnvelope(body)
}

func decodeEnvelope(body []byte) (Message, error) {
	var env pushEnvelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return Message{}, Permanent(fmt.Errorf("decode push body: %w", err))
	}
	if dec.More() {
		return Message{}, Permanent(errors.New("decode push body: trailing data"))
	}
	if env.Message == nil {
		return Message{}, Permanent(errors.New("push body has no message"))
	}
	id := env.Message.MessageID
	if id == "" {
		id = env.Message.MessageIDAlt
	}
	pt := env.Message.PublishTime
	if pt.IsZero() {
		pt = env.Message.PublishAlt
	}
	return Message{
		PublishTime:     pt,
		Attributes:      env.Message.Attributes,
		Data:            env.Message.Data,
		PubSubID:        id,
		DeliveryAttempt: env.DeliveryAttempt,
	}, nil
}
