/* A game-engine-shaped host of reasonrt's C ABI: load a model with a progress bar, start a
 * generation on reasonrt's worker thread, and poll it once per frame without ever
 * blocking the frame, printing thinking and answer as they arrive; cancel when a deadline
 * in frames passes (a game would cancel on a key).
 *
 *   game_loop MODEL_DIR [QUESTION] [MAX_FRAMES]
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reasonrt_c.h"

static int32_t show_progress(float fraction, void* user) {
  int i, filled = (int)(fraction * 30.0f + 0.5f);
  (void)user;
  fprintf(stderr, "\rloading [");
  for (i = 0; i < 30; ++i) fputc(i < filled ? '#' : ' ', stderr);
  fprintf(stderr, "] %3d%%", (int)(fraction * 100.0f + 0.5f));
  return 1; /* 0 would cancel the load */
}

/* Writes `s` as a JSON string literal (the question goes into the messages JSON). */
static void json_string(char* out, size_t cap, const char* s) {
  size_t n = 0;
  out[n++] = '"';
  for (; *s && n + 8 < cap; ++s) {
    if (*s == '"' || *s == '\\') out[n++] = '\\';
    if ((unsigned char)*s < 0x20) {
      n += (size_t)sprintf(out + n, "\\u%04x", (unsigned char)*s);
      continue;
    }
    out[n++] = *s;
  }
  out[n++] = '"';
  out[n] = '\0';
}

int main(int argc, char** argv) {
  rrt_load_options lo;
  rrt_generate_options go;
  rrt_model* model = NULL;
  rrt_generation* gen = NULL;
  char question[1024], messages[1200];
  int frame, max_frames = argc > 3 ? atoi(argv[3]) : 600, channel = -1, finished = 0;
  const struct timespec frame_time = {0, 16000000}; /* ~60 frames per second */
  if (argc < 2) {
    fprintf(stderr, "usage: game_loop MODEL_DIR [QUESTION] [MAX_FRAMES]\n");
    return 2;
  }
  rrt_load_options_init(&lo);
  lo.progress = show_progress;
  if (rrt_model_load(argv[1], strlen(argv[1]), &lo, &model) != RRT_OK) {
    fprintf(stderr, "\nload failed: %s\n", rrt_last_error());
    return 1;
  }
  fprintf(stderr, "\n");
  json_string(question, sizeof(question), argc > 2 ? argv[2] : "What is 17 * 23?");
  snprintf(messages, sizeof(messages), "[{\"role\": \"user\", \"content\": %s}]", question);
  rrt_generate_options_init(&go);
  go.max_new_tokens = 256;
  if (rrt_generation_start(model, messages, strlen(messages), &go, &gen) != RRT_OK) {
    fprintf(stderr, "start failed: %s\n", rrt_last_error());
    rrt_model_destroy(model);
    return 1;
  }
  for (frame = 0; !finished; ++frame) {
    rrt_event events[32];
    size_t i, count = 0;
    int32_t done = 0;
    if (frame == max_frames) rrt_generation_cancel(gen); /* the deadline: never blocks */
    if (rrt_generation_poll(gen, events, 32, &count, &done) != RRT_OK) {
      fprintf(stderr, "generation failed: %s\n", rrt_last_error());
      break;
    }
    for (i = 0; i < count; ++i) {
      const rrt_event* e = &events[i];
      if (e->type == RRT_EVENT_THINKING || e->type == RRT_EVENT_ANSWER) {
        if (e->type != channel) printf("\n[%s] ", e->type == RRT_EVENT_THINKING ? "thinking" : "answer");
        channel = e->type;
        fwrite(e->text, 1, e->text_length, stdout);
      } else if (e->type == RRT_EVENT_FINISH) {
        printf("\n[finished after %d frames: %s]\n", frame,
               e->finish_reason == RRT_FINISH_CANCELLED ? "cancelled at the deadline"
               : e->finish_reason == RRT_FINISH_EOS     ? "end of answer"
                                                        : "token limit");
      }
    }
    fflush(stdout);
    finished = done;
    nanosleep(&frame_time, NULL); /* the rest of the frame: rendering, physics, ... */
  }
  rrt_generation_destroy(gen);
  rrt_model_destroy(model);
  return 0;
}
