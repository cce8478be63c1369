// MLflow's Java client (org.mlflow:mlflow-client, unchanged) against a tracking server: experiments,
// runs, batch logging, history, search, artifacts (through the client's artifact CLI, which runs
// MLflow's Python package: MLFLOW_PYTHON_EXECUTABLE) and the registry. What it reads back is written
// as JSON for tests/integration/test_mlflow_java.py to assert on.
//
//   java -cp 'lib/*' Scenarios.java TRACKING_URI OUT.json PREFIX
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.mlflow.api.proto.ModelRegistry.ModelVersion;
import org.mlflow.api.proto.Service.FileInfo;
import org.mlflow.api.proto.Service.Metric;
import org.mlflow.api.proto.Service.Param;
import org.mlflow.api.proto.Service.Run;
import org.mlflow.api.proto.Service.RunInfo;
import org.mlflow.api.proto.Service.RunStatus;
import org.mlflow.api.proto.Service.RunTag;
import org.mlflow.api.proto.Service.ViewType;
import org.mlflow.tracking.MlflowClient;
import org.mlflow.tracking.RunsPage;

public class Scenarios {
  public static void main(String[] args) throws Exception {
    MlflowClient client = new MlflowClient(args[0]);
    String prefix = args[2];
    Map<String, Object> out = new LinkedHashMap<>();

    // Experiments
    String experimentId = client.createExperiment(prefix + "java-exp");
    client.setExperimentTag(experimentId, "team", "jvm");
    client.renameExperiment(experimentId, prefix + "java-renamed");
    out.put("experiment_name", client.getExperiment(experimentId).getName());
    out.put("experiment_tag", client.getExperiment(experimentId).getTags(0).getValue());
    out.put("by_name", client.getExperimentByName(prefix + "java-renamed").map(e -> e.getExperimentId()).orElse(""));
    out.put("searched_experiments", client.searchExperiments("name LIKE '" + prefix + "java-%'").getItems()
        .stream().map(e -> e.getName()).collect(Collectors.toList()));

    // Runs: params, tags, single metrics, a full batch, history, search, paging
    List<String> runIds = new ArrayList<>();
    for (int r = 0; r < 3; r++) {
      RunInfo info = client.createRun(experimentId);
      String runId = info.getRunId();
      runIds.add(runId);
      client.logParam(runId, "r", Integer.toString(r));
      client.setTag(runId, "lang", "java");
      client.logMetric(runId, "acc", 0.5 + r / 10.0, 1000L, 0L);
      List<Metric> batch = new ArrayList<>();
      for (int s = 0; s < 998; s++) {  // with a param and a tag: MLflow's 1,000 entities a batch
        batch.add(Metric.newBuilder().setKey("loss").setValue(1.0 / (s + 1)).setTimestamp(1000L + s).setStep(s).build());
      }
      client.logBatch(runId, batch, List.of(Param.newBuilder().setKey("opt").setValue("sgd").build()),
          List.of(RunTag.newBuilder().setKey("batch").setValue("yes").build()));
      client.setTerminated(runId, RunStatus.FINISHED);
    }
    Run first = client.getRun(runIds.get(0));
    Map<String, String> params = new LinkedHashMap<>();
    first.getData().getParamsList().forEach(p -> params.put(p.getKey(), p.getValue()));
    Map<String, String> tags = new LinkedHashMap<>();
    first.getData().getTagsList().stream().filter(t -> !t.getKey().startsWith("mlflow."))
        .forEach(t -> tags.put(t.getKey(), t.getValue()));
    Map<String, Double> latest = new LinkedHashMap<>();
    first.getData().getMetricsList().forEach(m -> latest.put(m.getKey(), m.getValue()));
    out.put("status", first.getInfo().getStatus().name());
    out.put("params", params);
    out.put("tags", tags);
    out.put("latest", latest);
    List<Metric> history = client.getMetricHistory(runIds.get(0), "loss");
    out.put("history", List.of(history.size(), history.get(997).getStep(), history.get(997).getValue()));
    out.put("searched", client.searchRuns(List.of(experimentId), "metrics.acc > 0.55 AND params.opt = 'sgd'")
        .stream().map(i -> runIds.indexOf(i.getRunId())).sorted().collect(Collectors.toList()));
    List<List<Integer>> pages = new ArrayList<>();
    RunsPage page = client.searchRuns(List.of(experimentId), "", ViewType.ACTIVE_ONLY, 2, List.of("params.r ASC"));
    while (true) {
      pages.add(page.getItems().stream().map(r -> runIds.indexOf(r.getInfo().getRunId())).collect(Collectors.toList()));
      if (!page.hasNextPage()) break;
      page = (RunsPage) page.getNextPage();
    }
    out.put("pages", pages);
    client.deleteRun(runIds.get(2));
    out.put("after_delete", client.searchRuns(List.of(experimentId), "").size());

    // Artifacts
    Path dir = Files.createTempDirectory("java-artifacts");
    Path file = dir.resolve("notes.txt");
    Files.writeString(file, "hello from java");
    client.logArtifact(runIds.get(0), file.toFile(), "docs");
    List<FileInfo> listed = client.listArtifacts(runIds.get(0), "docs");
    out.put("artifacts", listed.stream().map(f -> List.of(f.getPath(), f.getFileSize())).collect(Collectors.toList()));
    File back = client.downloadArtifacts(runIds.get(0), "docs/notes.txt");
    out.put("downloaded", Files.readString(back.toPath()));

    // Registry: writes over the client's REST helper (it has no typed calls for them), reads typed
    String model = prefix + "java-model";
    client.sendPost("registered-models/create", "{\"name\": \"" + model + "\"}");
    for (String runId : runIds.subList(0, 2)) {
      client.sendPost("model-versions/create",
          "{\"name\": \"" + model + "\", \"source\": \"runs:/" + runId + "/model\", \"run_id\": \"" + runId + "\"}");
    }
    client.sendPost("model-versions/transition-stage",
        "{\"name\": \"" + model + "\", \"version\": \"1\", \"stage\": \"Staging\"}");
    client.sendPost("model-versions/transition-stage",
        "{\"name\": \"" + model + "\", \"version\": \"2\", \"stage\": \"Production\"}");
    out.put("latest_versions", client.getLatestVersions(model, List.of("Production", "Staging")).stream()
        .map(v -> List.of(v.getVersion(), v.getCurrentStage())).collect(Collectors.toList()));
    ModelVersion two = client.getModelVersion(model, "2");
    out.put("version", List.of(two.getVersion(), two.getCurrentStage(), two.getRunId().equals(runIds.get(1))));
    out.put("registered_latest", client.getRegisteredModel(model).getLatestVersionsList().stream()
        .map(v -> v.getVersion()).sorted().collect(Collectors.toList()));
    out.put("download_uri", client.getModelVersionDownloadUri(model, "2"));
    out.put("searched_versions", client.searchModelVersions("name = '" + model + "'").getItems().stream()
        .map(v -> v.getVersion()).sorted().collect(Collectors.toList()));
    out.put("run_ids", runIds);
    client.close();
    Files.writeString(Path.of(args[1]), json(out), StandardCharsets.UTF_8);
  }

  /** Maps, lists, strings, numbers and booleans as JSON (what `out` holds). */
  static String json(Object value) {
    if (value instanceof Map<?, ?> map) {
      return map.entrySet().stream().map(e -> json(e.getKey().toString()) + ": " + json(e.getValue()))
          .collect(Collectors.joining(", ", "{", "}"));
    }
    if (value instanceof List<?> list) {
      return list.stream().map(Scenarios::json).collect(Collectors.joining(", ", "[", "]"));
    }
    if (value instanceof String s) {
      StringBuilder b = new StringBuilder("\"");
      for (char c : s.toCharArray()) {
        if (c == '"' || c == '\\') b.append('\\').append(c);
        else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
        else b.append(c);
      }
      return b.append('"').toString();
    }
    return String.valueOf(value);
  }
}
