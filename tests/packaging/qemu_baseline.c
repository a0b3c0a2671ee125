/* The smallest static program of a target: qemu-user's own memory, measured
 * while it runs this, is subtracted from qemu + mistore-agent
 * (test_footprint.py). Sleeps until killed. */
#include <unistd.h>

int main(void) {
  for (;;) pause();
}
