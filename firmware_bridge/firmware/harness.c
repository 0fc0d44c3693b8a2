/* Run the palpation firmware in simavr (ATmega328P, 16 MHz) with
 *  - its UART on a pseudo-terminal through a lossless bridge: bytes the chip sends are queued
 *    in the harness and written to the pty; if the host does not read, the emulated chip is
 *    stalled (not run) until the pty takes them again. Nothing is ever dropped here.
 *  - the emulation paced to real time (it sleeps when ahead of the wall clock);
 *  - a deterministic sensor waveform: millivolts on ADC0 set on each conversion start (FSR
 *    front end), or an emulated HX711 answering SCK pulses on PD3 with DOUT on PD2;
 *  - optionally, every injected value logged as "index time_us value expected_raw".
 * The first line on stdout is the pty path.
 *
 * usage: harness [--frontend fsr|hx711] [--log FILE] [--seconds S] [--unpaced] FIRMWARE.elf */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>
#include <sim_cycle_timers.h>
#include <avr_uart.h>
#include <avr_adc.h>
#include <avr_ioport.h>

#define F_CPU 16000000UL
#define AVCC_MV 5000
#define OUT_CAP (1 << 16)
#define STALL_AT 4096  /* queued bytes at which the chip is stalled */

static volatile sig_atomic_t running = 1;
static avr_t *avr;
static FILE *logf_;

/* ---------- UART bridge ---------- */
static uint8_t outq[OUT_CAP];
static size_t out_len;
static int uart_xon = 1;
static avr_irq_t *uart_in;

static void uart_out_cb(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq; (void)param;
    if (out_len < OUT_CAP)  /* cannot overflow: the chip is stalled at STALL_AT */
        outq[out_len++] = (uint8_t)value;
}
static void uart_xon_cb(avr_irq_t *irq, uint32_t v, void *p) { (void)irq; (void)v; (void)p; uart_xon = 1; }
static void uart_xoff_cb(avr_irq_t *irq, uint32_t v, void *p) { (void)irq; (void)v; (void)p; uart_xon = 0; }

static double emu_us(void) { return (double)avr->cycle * 1e6 / (double)avr->frequency; }

static void log_value(unsigned long n, long value, long expected)
{
    if (logf_)
        fprintf(logf_, "%lu %.1f %ld %ld\n", n, emu_us(), value, expected);
}

/* ---------- FSR front end: millivolts on ADC0 at every conversion start ---------- */
static avr_irq_t *adc_irq;
static unsigned long adc_n;

static long fsr_millivolts(unsigned long n)
{   /* a slow press with a per-sample pattern, so that an off-by-one sample shows */
    double slow = 2000.0 * sin(2.0 * M_PI * (double)n / 997.0);
    return 2500 + lround(slow) + (long)((n * 7919UL) % 200UL) - 100;
}

static void adc_trigger_cb(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq; (void)value; (void)param;
    long mv = fsr_millivolts(adc_n);
    long expected = mv * 1023 / AVCC_MV;  /* simavr's conversion, AVcc reference */
    if (expected > 1023)
        expected = 1023;
    avr_raise_irq(adc_irq + ADC_IRQ_ADC0, (uint32_t)mv);
    log_value(adc_n, mv, expected);
    adc_n++;
}

/* ---------- HX711 front end ---------- */
static avr_irq_t *portd;
static unsigned long hx_n;
static uint32_t hx_word;     /* the 24-bit conversion being shifted out */
static int hx_bit = 25;      /* next bit to shift out; 25 = idle */
static int hx_rate_hi;       /* RATE pin (PD4): high 80 S/s, low 10 S/s */
static unsigned hx_tick;

static long hx_counts(unsigned long n)
{
    double slow = 200000.0 * sin(2.0 * M_PI * (double)n / 160.0);
    return -100000 + lround(slow) + (long)((n * 7919UL) % 1001UL) - 500;
}

static avr_cycle_count_t hx_convert(avr_t *a, avr_cycle_count_t when, void *param)
{
    (void)a; (void)param;
    if (hx_rate_hi || (hx_tick % 8) == 0) {
        long v = hx_counts(hx_n);
        hx_word = (uint32_t)v & 0xFFFFFFu;
        hx_bit = 0;
        log_value(hx_n, v, v);
        hx_n++;
        avr_raise_irq(portd + IOPORT_IRQ_PIN2, 0);  /* DOUT low: data ready */
    }
    hx_tick++;
    return when + F_CPU / 80;  /* 12.5 ms */
}

static void hx_sck_cb(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq; (void)param;
    if (!value || hx_bit >= 25)
        return;
    if (hx_bit < 24)
        avr_raise_irq(portd + IOPORT_IRQ_PIN2, (hx_word >> (23 - hx_bit)) & 1);
    else
        avr_raise_irq(portd + IOPORT_IRQ_PIN2, 1);  /* 25th pulse: gain 128, not ready */
    hx_bit++;
}

static void hx_rate_cb(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq; (void)param;
    hx_rate_hi = value != 0;
}

/* ---------- main ---------- */
static void on_signal(int sig) { (void)sig; running = 0; }
static void no_sleep(avr_t *a, avr_cycle_count_t how_long) { (void)a; (void)how_long; }

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int open_pty(int *slave_keep, char *name, size_t cap)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, cap))
        return -1;
    int s = open(name, O_RDWR | O_NOCTTY);  /* kept open: the pty survives host reopen */
    if (s < 0)
        return -1;
    struct termios t;
    tcgetattr(s, &t);
    cfmakeraw(&t);  /* binary: no echo, no line editing, no CR/LF mapping */
    tcsetattr(s, TCSANOW, &t);
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    *slave_keep = s;
    return m;
}

int main(int argc, char **argv)
{
    const char *fw_path = NULL, *log_path = NULL, *frontend = "fsr";
    double seconds = 0;
    int paced = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--log") && i + 1 < argc) log_path = argv[++i];
        else if (!strcmp(argv[i], "--frontend") && i + 1 < argc) frontend = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--unpaced")) paced = 0;
        else if (argv[i][0] != '-') fw_path = argv[i];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!fw_path) {
        fprintf(stderr, "usage: %s [--frontend fsr|hx711] [--log FILE] [--seconds S] "
                "[--unpaced] FIRMWARE.elf\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    /* simavr prints loader chatter on stdout: keep stdout for the pty path alone */
    int saved_stdout = dup(1);
    dup2(2, 1);
    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(fw_path, &fw)) {
        fprintf(stderr, "cannot read %s\n", fw_path);
        return 1;
    }
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) {
        fprintf(stderr, "simavr has no atmega328p\n");
        return 1;
    }
    avr_init(avr);
    fw.frequency = F_CPU;
    avr_load_firmware(avr, &fw);
    avr->frequency = F_CPU;
    avr->vcc = avr->avcc = avr->aref = AVCC_MV;
    avr->sleep = no_sleep;  /* pacing is done here, also while the firmware busy-loops */
    avr->log = LOG_ERROR;

    if (log_path && !(logf_ = fopen(log_path, "w"))) {
        perror(log_path);
        return 1;
    }

    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                            uart_out_cb, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                            uart_xon_cb, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                            uart_xoff_cb, NULL);

    portd = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 0);
    avr_raise_irq(portd + IOPORT_IRQ_PIN7, 1);  /* hand-held button released */
    if (!strcmp(frontend, "fsr")) {
        adc_irq = avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, 0);
        avr_irq_register_notify(adc_irq + ADC_IRQ_OUT_TRIGGER, adc_trigger_cb, NULL);
    } else if (!strcmp(frontend, "hx711")) {
        avr_raise_irq(portd + IOPORT_IRQ_PIN2, 1);  /* DOUT high: not ready */
        avr_irq_register_notify(portd + IOPORT_IRQ_PIN3, hx_sck_cb, NULL);
        avr_irq_register_notify(portd + IOPORT_IRQ_PIN4, hx_rate_cb, NULL);
        avr_cycle_timer_register(avr, F_CPU / 80, hx_convert, NULL);
    } else {
        fprintf(stderr, "unknown front end %s\n", frontend);
        return 2;
    }

    char name[128];
    int slave_keep = -1;
    int master = open_pty(&slave_keep, name, sizeof name);
    if (master < 0) {
        perror("pty");
        return 1;
    }
    fflush(stdout);
    dup2(saved_stdout, 1);
    close(saved_stdout);
    printf("%s\n", name);

    uint8_t inq[256];
    size_t in_len = 0, in_pos = 0;
    double t0 = now_us(), last_flush = 0;
    while (running) {
        /* run the chip unless the host has left too many bytes unread */
        if (out_len < STALL_AT) {
            for (int k = 0; k < 256; k++) {
                int state = avr_run(avr);
                if (state == cpu_Done || state == cpu_Crashed) {
                    fprintf(stderr, "firmware stopped (state %d)\n", state);
                    running = 0;
                    break;
                }
            }
        }
        /* chip -> host */
        if (out_len) {
            ssize_t w = write(master, outq, out_len);
            if (w > 0) {
                memmove(outq, outq + w, out_len - (size_t)w);
                out_len -= (size_t)w;
            }
        }
        /* host -> chip, as fast as the UART's input FIFO accepts */
        if (in_pos == in_len) {
            ssize_t r = read(master, inq, sizeof inq);
            in_len = r > 0 ? (size_t)r : 0;
            in_pos = 0;
        }
        while (in_pos < in_len && uart_xon)
            avr_raise_irq(uart_in, inq[in_pos++]);

        double emu = emu_us(), wall = now_us() - t0;
        if (seconds > 0 && emu >= seconds * 1e6)
            break;
        if (out_len >= STALL_AT) {  /* stalled: wait for the host, without sprinting later */
            struct pollfd p = {master, POLLOUT, 0};
            double before = now_us();
            poll(&p, 1, 2);
            t0 += now_us() - before;
        } else if (paced && emu > wall + 1000) {
            usleep((useconds_t)(emu - wall));
        }
        if (logf_ && emu - last_flush > 200000) {
            fflush(logf_);
            last_flush = emu;
        }
    }
    if (logf_)
        fclose(logf_);
    fprintf(stderr, "harness: emulated %.3f s in %.3f s wall\n", emu_us() / 1e6,
            (now_us() - t0) / 1e6);
    close(master);
    close(slave_keep);
    return 0;
}
