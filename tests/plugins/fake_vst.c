/* A tiny VST2 synth for the tests, written against the VST 2.4 ABI (struct layout and
 * opcode numbers as every VST2 host uses them). Build: gcc -shared -fPIC -O1 fake_vst.c
 *
 *   -DEXIT_ON_LOAD  VSTPluginMain prints what a JUCE plugin prints without an X display
 *                   and ends the process with _exit(1).
 *   -DSEGV_ON_LOAD  VSTPluginMain raises SIGSEGV.
 *   (neither)       a sine synth with three parameters:
 *                   "level"  output gain (applied);
 *                   "crash"  >= 0.5 makes processReplacing raise SIGSEGV while a note sounds;
 *                   "stuck"  ignores every write (a parameter the plugin does not apply).
 *   -DRAND_NOISE    adds noise drawn from the C library's rand() to the sine while a note sounds
 *                   (as TAL-NoiseMaker's reverb modulation and master detune draw from it).
 *   -DMOMENTARY     the third parameter is "trigger" instead of "stuck": a momentary button
 *                   (default 0) that, once written above 0, restarts the sine's phase at the
 *                   next processed block and puts itself back to 0 there.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct AEffect AEffect;
typedef intptr_t (*HostCallback)(AEffect *, int32_t, int32_t, intptr_t, void *, float);
struct AEffect {
    int32_t magic;
    intptr_t (*dispatcher)(AEffect *, int32_t, int32_t, intptr_t, void *, float);
    void (*process)(AEffect *, float **, float **, int32_t);
    void (*setParameter)(AEffect *, int32_t, float);
    float (*getParameter)(AEffect *, int32_t);
    int32_t numPrograms, numParams, numInputs, numOutputs, flags;
    intptr_t resvd1, resvd2;
    int32_t initialDelay, realQualities, offQualities;
    float ioRatio;
    void *object, *user;
    int32_t uniqueID, version;
    void (*processReplacing)(AEffect *, float **, float **, int32_t);
    void (*processDoubleReplacing)(AEffect *, double **, double **, int32_t);
    char future[56];
};

typedef struct { int32_t type, byteSize, deltaFrames, flags, noteLength, noteOffset;
                 char midiData[4]; } MidiEvent;
typedef struct { int32_t numEvents; intptr_t reserved; MidiEvent *events[2]; } Events;

enum { effOpen = 0, effClose = 1, effGetParamLabel = 6, effGetParamDisplay = 7, effGetParamName = 8,
       effSetSampleRate = 10, effProcessEvents = 25, effGetPlugCategory = 35, effGetEffectName = 45,
       effGetVendorString = 47, effGetProductString = 48, effCanDo = 51, effGetVstVersion = 58 };

typedef struct { AEffect fx; float params[3]; double sr, phase, freq; int gate; } Plugin;
#ifdef MOMENTARY
static const char *NAMES[3] = {"level", "crash", "trigger"};
#else
static const char *NAMES[3] = {"level", "crash", "stuck"};
#endif

static intptr_t dispatcher(AEffect *e, int32_t op, int32_t idx, intptr_t val, void *ptr, float opt) {
    Plugin *p = (Plugin *)e;
    switch (op) {
    case effClose: free(p); return 1;
    case effGetParamName: if (idx >= 0 && idx < 3) strcpy((char *)ptr, NAMES[idx]); return 0;
    case effGetParamLabel: strcpy((char *)ptr, idx == 0 ? "dB" : ""); return 0;
    case effGetParamDisplay:
        if (idx == 0) snprintf((char *)ptr, 8, "%.1f", 40.0 * p->params[0] - 40.0);
        else if (idx >= 0 && idx < 3) snprintf((char *)ptr, 8, "%.2f", p->params[idx]);
        return 0;
    case effSetSampleRate: p->sr = opt; return 0;
    case effProcessEvents: {
        Events *ev = (Events *)ptr;
        for (int k = 0; k < ev->numEvents; k++) {
            MidiEvent *m = ev->events[k];
            int status = m->midiData[0] & 0xF0;
            if (status == 0x90 && m->midiData[2] > 0) {
                p->gate = 1; p->freq = 440.0 * pow(2.0, (m->midiData[1] - 69) / 12.0);
            } else if (status == 0x80 || status == 0x90) p->gate = 0;
        }
        return 1;
    }
    case effGetPlugCategory: return 2; /* synth */
    case effGetEffectName: case effGetProductString: strcpy((char *)ptr, "fake_vst"); return 1;
    case effGetVendorString: strcpy((char *)ptr, "synth_probe tests"); return 1;
    case effCanDo: return (ptr && (!strcmp((char *)ptr, "receiveVstEvents") ||
                                   !strcmp((char *)ptr, "receiveVstMidiEvent"))) ? 1 : 0;
    case effGetVstVersion: return 2400;
    default: return 0;
    }
}

static void set_parameter(AEffect *e, int32_t i, float v) {
    Plugin *p = (Plugin *)e;
#ifdef MOMENTARY
    if (i >= 0 && i < 3) p->params[i] = v;
#else
    if (i == 0 || i == 1) p->params[i] = v; /* "stuck" (2) ignores writes */
#endif
}
static float get_parameter(AEffect *e, int32_t i) { return (i >= 0 && i < 3) ? ((Plugin *)e)->params[i] : 0.f; }

static void process(AEffect *e, float **in, float **out, int32_t n) {
    Plugin *p = (Plugin *)e;
    (void)in;
    if (p->gate && p->params[1] >= 0.5f) raise(SIGSEGV);
#ifdef MOMENTARY
    if (p->params[2] > 0.f) { p->phase = 0.0; p->params[2] = 0.f; } /* the button acts once, then releases */
#endif
    double amp = p->gate ? 0.5 * pow(10.0, (40.0 * p->params[0] - 40.0) / 20.0) : 0.0;
    for (int k = 0; k < n; k++) {
        float s = (float)(amp * sin(p->phase));
#ifdef RAND_NOISE
        if (p->gate) s += 0.05f * ((float)rand() / (float)RAND_MAX - 0.5f);
#endif
        p->phase += 2.0 * M_PI * p->freq / (p->sr > 0 ? p->sr : 44100.0);
        out[0][k] = s; out[1][k] = s;
    }
}

AEffect *VSTPluginMain(HostCallback host) {
    (void)host;
#if defined(EXIT_ON_LOAD)
    fprintf(stderr, "Failed to connect to the X Server.\n");
    _exit(1);
#elif defined(SEGV_ON_LOAD)
    raise(SIGSEGV);
#endif
    Plugin *p = calloc(1, sizeof(Plugin));
    p->fx.magic = 0x56737450; /* 'VstP' */
    p->fx.dispatcher = dispatcher;
    p->fx.process = process;
    p->fx.processReplacing = process;
    p->fx.setParameter = set_parameter;
    p->fx.getParameter = get_parameter;
    p->fx.numPrograms = 1; p->fx.numParams = 3; p->fx.numInputs = 0; p->fx.numOutputs = 2;
    p->fx.flags = (1 << 4) | (1 << 8); /* canReplacing | isSynth */
    p->fx.uniqueID = 0x66616b65; p->fx.version = 1; p->fx.ioRatio = 1.f;
    p->params[0] = 0.75f;
#ifndef MOMENTARY
    p->params[2] = 0.25f;
#endif
    p->sr = 44100.0; p->freq = 440.0;
    return &p->fx;
}
