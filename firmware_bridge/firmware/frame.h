/* palpation wire protocol v1: frame encoder and byte-at-a-time decoder.
 * One file shared by the AVR firmware and the host build (see PROTOCOL.md). */
#ifndef PALPATION_FRAME_H
#define PALPATION_FRAME_H
#include <stdint.h>

#define FRAME_SYNC0 0xA5
#define FRAME_SYNC1 0x5A
#define FRAME_VERSION 1
#define FRAME_HEADER_LEN 5
#define FRAME_CRC_LEN 2

#define TYPE_SAMPLE 0x01
#define TYPE_DEVICE_INFO 0x02
#define TYPE_ACK 0x03
#define CMD_IDENTIFY 0x10
#define CMD_START 0x11
#define CMD_STOP 0x12
#define CMD_SET_RATE 0x13
#define CMD_TARE 0x14

#define FLAG_BUTTON 0x01
#define FLAG_SATURATED 0x02
#define FLAG_FAULT 0x04

#define ACK_OK 0
#define ACK_UNSUPPORTED 1
#define ACK_BAD_ARGUMENT 2
#define ACK_BUSY 3

#define SAMPLE_PAYLOAD_LEN 11
#define SAMPLE_FRAME_LEN (FRAME_HEADER_LEN + SAMPLE_PAYLOAD_LEN + FRAME_CRC_LEN)
#define INFO_FIXED_LEN 14
#define INFO_MAX_TEXT 32
#define INFO_MAX_PAYLOAD (INFO_FIXED_LEN + 2 + 2 * INFO_MAX_TEXT)
#define ACK_PAYLOAD_LEN 6
/* the longest frame any known type allows (device information) */
#define FRAME_MAX_LEN (FRAME_HEADER_LEN + INFO_MAX_PAYLOAD + FRAME_CRC_LEN)

typedef struct {
    uint8_t fw_major, fw_minor, fw_patch;
    uint8_t sensor_kind;
    uint8_t adc_bits;
    uint32_t rate_mhz;
    float counts_per_newton;   /* NaN if none */
    const char *device_id;     /* ASCII, truncated to 32 */
    const char *model;         /* ASCII, truncated to 32 */
} device_info_t;

uint16_t frame_crc16_update(uint16_t crc, uint8_t byte);
uint16_t frame_crc16(const uint8_t *data, uint16_t len, uint16_t crc);

/* Each encoder writes one whole frame to out and returns its length in bytes
 * (0 if the payload is too long). */
uint8_t frame_encode(uint8_t *out, uint8_t type, const uint8_t *payload, uint8_t len);
uint8_t frame_encode_sample(uint8_t *out, uint16_t seq, uint32_t tick, int32_t raw,
                            uint8_t flags);
uint8_t frame_encode_ack(uint8_t *out, uint8_t command, uint8_t status, int32_t value);
uint8_t frame_encode_device_info(uint8_t *out, const device_info_t *info);

/* Payload lengths a type allows; returns 0 for an unknown type. */
uint8_t frame_len_range(uint8_t type, uint8_t *lo, uint8_t *hi);

/* Decoder with the host's resynchronisation rule: a complete frame with a plausible header
 * and a good CRC at the buffer start is taken; a possible prefix waits; otherwise exactly one
 * byte is discarded (garbage) and parsing retries at the next byte.
 * Use: for every byte, frame_decoder_push(); then while (frame_decoder_poll(...)) handle. */
typedef struct {
    uint8_t buf[FRAME_MAX_LEN];
    uint8_t len;
    uint32_t frames;
    uint32_t crc_errors;
    uint32_t garbage_bytes;
} frame_decoder_t;

void frame_decoder_init(frame_decoder_t *d);
/* returns 0 if the buffer is full (poll first) */
uint8_t frame_decoder_push(frame_decoder_t *d, uint8_t byte);
/* 1 and the frame's type/payload/length if a frame was taken, else 0 (wait for more) */
uint8_t frame_decoder_poll(frame_decoder_t *d, uint8_t *type, uint8_t *payload, uint8_t *len);

uint16_t frame_decoder_size(void);

/* little-endian helpers */
uint32_t frame_get_u32(const uint8_t *p);

#endif
