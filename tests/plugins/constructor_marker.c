/* A hostile "plugin" for the security tests: a shared library whose constructor runs the moment
 * anything loads it (dlopen), before any plugin API is called. It writes the file MARKER_PATH
 * (given at build time: gcc -shared -fPIC -DMARKER_PATH='"/tmp/x"' constructor_marker.c) and
 * exports VSTPluginMain so that it passes a host's file checks as a VST2 plugin; the entry point
 * returns no plugin. Tests assert that a model folder never makes synth_probe load it.
 */
#include <stdio.h>

#ifndef MARKER_PATH
#error "build with -DMARKER_PATH='\"/path/of/the/marker\"'"
#endif

__attribute__((constructor)) static void on_load(void) {
    FILE *f = fopen(MARKER_PATH, "w");
    if (f) {
        fputs("constructor ran\n", f);
        fclose(f);
    }
}

void *VSTPluginMain(void *host) {
    (void)host;
    return 0;
}
