/* palpation reference firmware for the ATmega328P at 16 MHz (Arduino Uno / Nano).
 * Wire protocol v1 (../PROTOCOL.md). Front end chosen at compile time:
 *   FRONTEND_FSR   FSR / analog sensor on ADC0 (AVcc reference), 10 bits, up to 1 kHz
 *   FRONTEND_HX711 load cell through an HX711: DOUT PD2, SCK PD3, RATE PD4, 10 or 80 S/s
 * Hand-held button on PD7 to GND (internal pull-up): pressed sets flag bit 0. */
#include <avr/io.h>
#include <avr/interrupt.h>
#include <util/atomic.h>
#include <util/delay.h>
#include <math.h>
#include "frame.h"

#if defined(__has_include) && __has_include(<avr/avr_mcu_section.h>)
#include <avr/avr_mcu_section.h>  /* from simavr: the emulator reads the clock from the ELF */
AVR_MCU(F_CPU, "atmega328p");
AVR_MCU_VOLTAGES(5000, 5000, 5000);
#endif

#ifndef BAUD
#define BAUD 250000UL
#endif
#define FW_MAJOR 1
#define FW_MINOR 0
#define FW_PATCH 0
#ifndef DEVICE_ID
#define DEVICE_ID "PALP-0001"
#endif

#if defined(FRONTEND_FSR)
#define SENSOR_KIND 2
#define ADC_BITS 10
#define MODEL "uno-fsr"
#ifndef DEFAULT_RATE_MHZ
#define DEFAULT_RATE_MHZ 1000000UL
#endif
#elif defined(FRONTEND_HX711)
#define SENSOR_KIND 1
#define ADC_BITS 24
#define MODEL "uno-hx711"
#ifndef DEFAULT_RATE_MHZ
#define DEFAULT_RATE_MHZ 80000UL
#endif
#define HX_DOUT PD2
#define HX_SCK PD3
#define HX_RATE PD4
#else
#error "define FRONTEND_FSR or FRONTEND_HX711"
#endif
#define BUTTON PD7
#define TARE_SAMPLES 16

/* ---------------- microsecond clock: Timer1, prescaler 8 (0.5 us per count) ---------------- */
static volatile uint32_t t1_overflows;

ISR(TIMER1_OVF_vect) { t1_overflows++; }

static uint32_t micros_now(void)
{
    uint32_t ovf;
    uint16_t cnt;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
        ovf = t1_overflows;
        cnt = TCNT1;
        if ((TIFR1 & _BV(TOV1)) && cnt < 0x8000)
            ovf++;
    }
    return (ovf << 15) + (cnt >> 1);  /* wraps at 2^32 us */
}

/* ---------------- UART: interrupt-driven receive and transmit rings ---------------- */
#define TX_SIZE 256  /* power of two */
#define RX_SIZE 64
static volatile uint8_t tx_buf[TX_SIZE];
static volatile uint16_t tx_head, tx_tail;  /* head written by main, tail by the ISR */
static volatile uint8_t rx_buf[RX_SIZE];
static volatile uint8_t rx_head, rx_tail;

ISR(USART_RX_vect)
{
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1) % RX_SIZE);
    if (next != rx_tail) {
        rx_buf[rx_head] = b;
        rx_head = next;
    }
}

ISR(USART_UDRE_vect)
{
    if (tx_tail == tx_head) {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
        return;
    }
    UDR0 = tx_buf[tx_tail];
    tx_tail = (tx_tail + 1) & (TX_SIZE - 1);
}

static void uart_init(void)
{
    /* U2X and frame format first: simavr computes the bit time when UBRR0L is written */
    UCSR0A = _BV(U2X0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);  /* 8N1 */
    UBRR0H = (uint8_t)(((F_CPU / 8 / BAUD) - 1) >> 8);
    UBRR0L = (uint8_t)((F_CPU / 8 / BAUD) - 1);
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

/* Queue a whole frame or nothing: returns 0 (frame dropped) if the ring lacks room. */
static uint8_t tx_frame(const uint8_t *f, uint8_t n)
{
    uint16_t tail;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { tail = tx_tail; }
    uint16_t used = (tx_head - tail) & (TX_SIZE - 1);
    if (used + n > TX_SIZE - 1)
        return 0;
    uint16_t h = tx_head;
    for (uint8_t i = 0; i < n; i++) {
        tx_buf[h] = f[i];
        h = (h + 1) & (TX_SIZE - 1);
    }
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
        tx_head = h;
        UCSR0B |= _BV(UDRIE0);
    }
    return 1;
}

static int16_t rx_byte(void)
{
    int16_t b = -1;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
        if (rx_tail != rx_head) {
            b = rx_buf[rx_tail];
            rx_tail = (uint8_t)((rx_tail + 1) % RX_SIZE);
        }
    }
    return b;
}

/* ---------------- samples from the front end ---------------- */
typedef struct { uint32_t tick; int32_t raw; uint8_t flags; } sample_t;
#define SQ_SIZE 8
static volatile sample_t sq[SQ_SIZE];
static volatile uint8_t sq_head, sq_tail;
static uint32_t rate_mhz = DEFAULT_RATE_MHZ;

static uint8_t button_flag(void) { return (PIND & _BV(BUTTON)) ? 0 : FLAG_BUTTON; }

static void sq_put(uint32_t tick, int32_t raw, uint8_t flags)
{   /* called with interrupts off (ISR) or from main only for the HX711 */
    uint8_t next = (uint8_t)((sq_head + 1) % SQ_SIZE);
    if (next == sq_tail)
        return;  /* main loop stalled for 8 periods: cannot happen in practice */
    sq[sq_head].tick = tick;
    sq[sq_head].raw = raw;
    sq[sq_head].flags = flags;
    sq_head = next;
}

#if defined(FRONTEND_FSR)
/* Timer1 compare A schedules conversions: OCR1A advances by the period (in steps of at most
 * 30 ms, since the 16-bit compare spans 32.7 ms). The tick of a sample is its scheduled time,
 * so consecutive ticks differ by exactly the period. */
static volatile uint32_t period_us = 1000000000UL / DEFAULT_RATE_MHZ;
static volatile uint32_t remaining_us;
static volatile uint32_t sched_tick;     /* the scheduled time of the next compare */
static volatile uint32_t conv_tick;      /* tick of the conversion under way */

ISR(TIMER1_COMPA_vect)
{
    uint32_t step;
    if (remaining_us == 0) {
        conv_tick = sched_tick;
        ADCSRA |= _BV(ADSC);
        remaining_us = period_us;
    }
    step = remaining_us > 30000 ? 30000 : remaining_us;
    remaining_us -= step;
    sched_tick += step;
    OCR1A += (uint16_t)(step * 2);
}

ISR(ADC_vect)
{
    uint16_t v = ADC;
    uint8_t flags = button_flag();
    if (v >= 1023)
        flags |= FLAG_SATURATED;
    sq_put(conv_tick, v, flags);
}

static void frontend_init(void)
{
    DIDR0 = _BV(ADC0D);
    ADMUX = _BV(REFS0);                                   /* AVcc reference, ADC0 */
    ADCSRA = _BV(ADEN) | _BV(ADIE) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);  /* 125 kHz */
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
        uint32_t now = micros_now();
        uint16_t cnt = TCNT1;
        remaining_us = 0;
        sched_tick = now + 100;
        OCR1A = (uint16_t)(cnt + 200);
        TIFR1 = _BV(OCF1A);
        TIMSK1 |= _BV(OCIE1A);
    }
}

static uint8_t frontend_set_rate(uint32_t mhz)
{
    if (mhz < 1000 || mhz > 1000000)  /* 1 Hz ... 1 kHz */
        return 0;
    uint32_t p = (1000000000UL + mhz / 2) / mhz;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { period_us = p; }
    rate_mhz = (1000000000UL + p / 2) / p;
    return 1;
}

static void frontend_poll(void) {}

#else /* HX711 */
static uint32_t hx_last_ready;

static int32_t hx_read(void)
{
    uint32_t v = 0;
    for (uint8_t i = 0; i < 25; i++) {  /* 24 data bits, then 1 pulse: channel A gain 128 */
        ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {  /* SCK high > 60 us would power it down */
            PORTD |= _BV(HX_SCK);
            _delay_us(1);
            if (i < 24)
                v = (v << 1) | ((PIND & _BV(HX_DOUT)) ? 1 : 0);
            PORTD &= (uint8_t)~_BV(HX_SCK);
        }
        _delay_us(1);
    }
    if (v & 0x800000UL)
        v |= 0xFF000000UL;  /* sign-extend the 24-bit two's complement */
    return (int32_t)v;
}

static void frontend_init(void)
{
    DDRD |= _BV(HX_SCK) | _BV(HX_RATE);
    DDRD &= (uint8_t)~_BV(HX_DOUT);
    PORTD &= (uint8_t)~_BV(HX_SCK);
    if (rate_mhz == 80000)
        PORTD |= _BV(HX_RATE);
    else
        PORTD &= (uint8_t)~_BV(HX_RATE);
    hx_last_ready = micros_now();
}

static uint8_t frontend_set_rate(uint32_t mhz)
{
    if (mhz != 10000 && mhz != 80000)
        return 0;
    rate_mhz = mhz;
    if (mhz == 80000)
        PORTD |= _BV(HX_RATE);
    else
        PORTD &= (uint8_t)~_BV(HX_RATE);
    return 1;
}

static void frontend_poll(void)
{
    uint32_t now = micros_now();
    if (!(PIND & _BV(HX_DOUT))) {  /* DOUT low: a conversion is ready */
        int32_t raw = hx_read();
        uint8_t flags = button_flag();
        if (raw == 8388607L || raw == -8388608L)
            flags |= FLAG_SATURATED;
        hx_last_ready = now;
        sq_put(now, raw, flags);
    } else if (now - hx_last_ready > 4UL * 1000000000UL / rate_mhz) {
        hx_last_ready = now;  /* no data for 4 periods: report the fault */
        sq_put(now, 0, button_flag() | FLAG_FAULT);
    }
}
#endif

/* ---------------- protocol ---------------- */
static uint8_t streaming;
static uint16_t seq;
static uint8_t tare_left;
static int32_t tare_sum;
static uint8_t out[FRAME_MAX_LEN];

static void send_device_info(void)
{
    device_info_t info = {FW_MAJOR, FW_MINOR, FW_PATCH, SENSOR_KIND, ADC_BITS, rate_mhz,
                          NAN, DEVICE_ID, MODEL};
    while (!tx_frame(out, frame_encode_device_info(out, &info)))
        ;  /* answers wait for room, samples do not */
}

static void send_ack(uint8_t cmd, uint8_t status, int32_t value)
{
    while (!tx_frame(out, frame_encode_ack(out, cmd, status, value)))
        ;
}

static void handle_command(uint8_t type, const uint8_t *payload)
{
    switch (type) {
    case CMD_IDENTIFY: send_device_info(); break;
    case CMD_START: streaming = 1; send_ack(type, ACK_OK, 0); break;
    case CMD_STOP: streaming = 0; send_ack(type, ACK_OK, 0); break;
    case CMD_SET_RATE:
        if (frontend_set_rate(frame_get_u32(payload)))
            send_ack(type, ACK_OK, (int32_t)rate_mhz);
        else
            send_ack(type, ACK_BAD_ARGUMENT, (int32_t)rate_mhz);
        break;
    case CMD_TARE:
        if (!tare_left) {
            tare_left = TARE_SAMPLES;
            tare_sum = 0;
        }
        break;  /* answered once 16 readings are averaged */
    default: break;  /* not a command: ignored */
    }
}

static void handle_sample(const sample_t *s)
{
    if (tare_left && !(s->flags & FLAG_FAULT)) {
        tare_sum += s->raw;
        if (--tare_left == 0) {
            int32_t mean = tare_sum >= 0 ? (tare_sum + TARE_SAMPLES / 2) / TARE_SAMPLES
                                         : (tare_sum - TARE_SAMPLES / 2) / TARE_SAMPLES;
            send_ack(CMD_TARE, ACK_OK, mean);
        }
    }
    if (!streaming)
        return;
    uint8_t frame[SAMPLE_FRAME_LEN];
    tx_frame(frame, frame_encode_sample(frame, seq, s->tick, s->raw, s->flags));
    seq++;  /* a dropped frame still consumes its number: the host sees the gap */
}

int main(void)
{
    static frame_decoder_t dec;
    uint8_t payload[FRAME_MAX_LEN];
    uint8_t type, len;

    DDRD &= (uint8_t)~_BV(BUTTON);
    PORTD |= _BV(BUTTON);  /* pull-up */
    TCCR1A = 0;
    TCCR1B = _BV(CS11);    /* Timer1 normal mode, clk/8: 2 counts per microsecond */
    TIMSK1 = _BV(TOIE1);
    uart_init();
    frame_decoder_init(&dec);
    frontend_init();
    sei();
    send_device_info();

    for (;;) {
        int16_t b;
        while ((b = rx_byte()) >= 0) {
            frame_decoder_push(&dec, (uint8_t)b);
            while (frame_decoder_poll(&dec, &type, payload, &len))
                handle_command(type, payload);
        }
        frontend_poll();
        while (sq_tail != sq_head) {
            sample_t s;
            ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
                s.tick = sq[sq_tail].tick;
                s.raw = sq[sq_tail].raw;
                s.flags = sq[sq_tail].flags;
                sq_tail = (uint8_t)((sq_tail + 1) % SQ_SIZE);
            }
            handle_sample(&s);
        }
    }
}
