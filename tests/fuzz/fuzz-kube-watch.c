// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: what the Kubernetes API server sends the agent, a NodeList page
 * (the first line of the input) then watch events (one per following line), all into
 * the node cache; the cache's NodeList then goes through topology_parse as the agent
 * does. Beyond "no crash": the cache always renders a JSON document of the stated
 * length, and a re-list with that document gives back the same document.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "log.h"
#include "topology.h"

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-kube-watch: broken promise: %s\n", what);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *end = text + size, *line, *nl;
	struct kube_cache *c = NULL, *again = NULL;
	struct topology *topo = NULL;
	char *doc = NULL, *doc2 = NULL, *cont = NULL;
	size_t len = 0, len2 = 0;
	json_t *parsed;
	int r;

	check(kube_cache_new(&c) == 0, "cannot make a cache");
	nl = memchr(text, '\n', size);
	line = nl ? nl + 1 : end;
	r = kube_cache_load_list(c, text, (size_t)((nl ? nl : end) - text), true, &cont);
	check(r <= 0, "list: positive return");
	free(cont);
	/* bounded: libFuzzer caps the input length, and each line is one event */
	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		r = kube_cache_apply_event(c, line, (size_t)((nl ? nl + 1 : end) - line));
		check(r >= -4095 && r <= KUBE_EVENT_ERROR, "event: return out of range");
		line = nl ? nl + 1 : end;
	}
	check(kube_cache_resource_version(c) != NULL, "no resource version");
	check(kube_cache_to_json(c, &doc, &len) == 0, "the cache does not render");
	check(strlen(doc) == len, "rendered length is wrong");
	parsed = json_loadb(doc, len, 0, NULL);
	check(parsed != NULL, "the cache renders invalid JSON");
	json_decref(parsed);
	(void)topology_parse(doc, len, &topo);
	topology_free(topo);

	check(kube_cache_new(&again) == 0, "cannot make a cache");
	check(kube_cache_load_list(again, doc, len, true, NULL) == 0,
	      "the cache's own NodeList does not load");
	check(kube_cache_to_json(again, &doc2, &len2) == 0, "the reloaded cache does not render");
	check(len == len2 && memcmp(doc, doc2, len) == 0, "re-list changed the document");
	free(doc);
	free(doc2);
	kube_cache_free(again);
	kube_cache_free(c);
	return 0;
}
