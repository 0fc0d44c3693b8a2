/* palpation wire protocol v1: see frame.h and ../PROTOCOL.md */
#include "frame.h"
#include <string.h>

uint16_t frame_crc16_update(uint16_t crc, uint8_t byte)
{
    crc ^= (uint16_t)byte << 8;
    for (uint8_t i = 0; i < 8; i++)
        crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    return crc;
}

uint16_t frame_crc16(const uint8_t *data, uint16_t len, uint16_t crc)
{
    while (len--)
        crc = frame_crc16_update(crc, *data++);
    return crc;
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

uint32_t frame_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint8_t finish(uint8_t *out, uint8_t type, uint8_t len)
{
    out[0] = FRAME_SYNC0;
    out[1] = FRAME_SYNC1;
    out[2] = FRAME_VERSION;
    out[3] = type;
    out[4] = len;
    put_u16(out + FRAME_HEADER_LEN + len, frame_crc16(out + 2, (uint16_t)(3 + len), 0xFFFF));
    return (uint8_t)(FRAME_HEADER_LEN + len + FRAME_CRC_LEN);
}

uint8_t frame_encode(uint8_t *out, uint8_t type, const uint8_t *payload, uint8_t len)
{
    if (len > 240)
        return 0;
    if (len)
        memmove(out + FRAME_HEADER_LEN, payload, len);
    return finish(out, type, len);
}

uint8_t frame_encode_sample(uint8_t *out, uint16_t seq, uint32_t tick, int32_t raw, uint8_t flags)
{
    uint8_t *p = out + FRAME_HEADER_LEN;
    put_u16(p, seq);
    put_u32(p + 2, tick);
    put_u32(p + 6, (uint32_t)raw);
    p[10] = flags;
    return finish(out, TYPE_SAMPLE, SAMPLE_PAYLOAD_LEN);
}

uint8_t frame_encode_ack(uint8_t *out, uint8_t command, uint8_t status, int32_t value)
{
    uint8_t *p = out + FRAME_HEADER_LEN;
    p[0] = command;
    p[1] = status;
    put_u32(p + 2, (uint32_t)value);
    return finish(out, TYPE_ACK, ACK_PAYLOAD_LEN);
}

static uint8_t put_text(uint8_t *p, const char *s)
{
    uint8_t n = 0;
    if (s)
        while (s[n] && n < INFO_MAX_TEXT) {
            p[1 + n] = (uint8_t)s[n];
            n++;
        }
    p[0] = n;
    return (uint8_t)(n + 1);
}

uint8_t frame_encode_device_info(uint8_t *out, const device_info_t *info)
{
    uint8_t *p = out + FRAME_HEADER_LEN;
    union { float f; uint32_t u; } cpn;
    p[0] = FRAME_VERSION;
    p[1] = info->fw_major;
    p[2] = info->fw_minor;
    p[3] = info->fw_patch;
    p[4] = info->sensor_kind;
    p[5] = info->adc_bits;
    put_u32(p + 6, info->rate_mhz);
    cpn.f = info->counts_per_newton;
    put_u32(p + 10, cpn.u);
    uint8_t len = INFO_FIXED_LEN;
    len += put_text(p + len, info->device_id);
    len += put_text(p + len, info->model);
    return finish(out, TYPE_DEVICE_INFO, len);
}

uint8_t frame_len_range(uint8_t type, uint8_t *lo, uint8_t *hi)
{
    switch (type) {
    case TYPE_SAMPLE: *lo = *hi = SAMPLE_PAYLOAD_LEN; return 1;
    case TYPE_DEVICE_INFO: *lo = INFO_FIXED_LEN + 2; *hi = INFO_MAX_PAYLOAD; return 1;
    case TYPE_ACK: *lo = *hi = ACK_PAYLOAD_LEN; return 1;
    case CMD_IDENTIFY: case CMD_START: case CMD_STOP: case CMD_TARE: *lo = *hi = 0; return 1;
    case CMD_SET_RATE: *lo = *hi = 4; return 1;
    default: return 0;
    }
}

void frame_decoder_init(frame_decoder_t *d)
{
    memset(d, 0, sizeof *d);
}

uint16_t frame_decoder_size(void) { return (uint16_t)sizeof(frame_decoder_t); }

uint8_t frame_decoder_push(frame_decoder_t *d, uint8_t byte)
{
    if (d->len >= FRAME_MAX_LEN)
        return 0;
    d->buf[d->len++] = byte;
    return 1;
}

enum { WAIT, SKIP, TAKE };

/* What the bytes at the start of the buffer are: a whole frame (its length in *flen), a
 * possible prefix, or not a frame (skip one byte). */
static uint8_t classify(frame_decoder_t *d, uint8_t *flen)
{
    uint8_t lo, hi;
    const uint8_t *b = d->buf;
    if (d->len >= 1 && b[0] != FRAME_SYNC0)
        return SKIP;
    if (d->len >= 2 && b[1] != FRAME_SYNC1)
        return SKIP;
    if (d->len < FRAME_HEADER_LEN)
        return WAIT;
    if (b[2] != FRAME_VERSION || !frame_len_range(b[3], &lo, &hi) || b[4] < lo || b[4] > hi)
        return SKIP;
    uint8_t n = (uint8_t)(FRAME_HEADER_LEN + b[4] + FRAME_CRC_LEN);
    if (d->len < n)
        return WAIT;
    uint16_t crc = frame_crc16(b + 2, (uint16_t)(n - 4), 0xFFFF);
    if ((uint16_t)(b[n - 2] | (b[n - 1] << 8)) != crc) {
        d->crc_errors++;
        return SKIP;
    }
    *flen = n;
    return TAKE;
}

uint8_t frame_decoder_poll(frame_decoder_t *d, uint8_t *type, uint8_t *payload, uint8_t *len)
{
    while (d->len) {
        uint8_t n = 0;
        uint8_t what = classify(d, &n);
        if (what == WAIT)
            return 0;
        if (what == SKIP) {
            memmove(d->buf, d->buf + 1, --d->len);
            d->garbage_bytes++;
            continue;
        }
        *type = d->buf[3];
        *len = d->buf[4];
        memcpy(payload, d->buf + FRAME_HEADER_LEN, d->buf[4]);
        d->len = (uint8_t)(d->len - n);
        memmove(d->buf, d->buf + n, d->len);
        d->frames++;
        return 1;
    }
    return 0;
}
