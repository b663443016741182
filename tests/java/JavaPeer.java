// The Java side of tests/test_java_interop.py: the real HdrHistogram library
// reads and writes what caxton_meter writes and reads.  Run with the
// single-file source launcher (Java 11+):
//
//   java -cp /usr/share/java/hdrhistogram.jar tests/java/JavaPeer.java <command> ...
//
// Each launch compiles this file (about a second), so every command handles a
// whole batch.  Output is one line per histogram, "key=value" fields separated
// by spaces (describe() below); a histogram Java cannot read is reported as
// "ERROR <exception>" on its line, so the others still get compared.
//
// Commands:
//   decode <percentiles>      stdin: one V2 compressed base64 histogram a line;
//                             decodes each and describes it.
//   encode <percentiles>      stdin: "<lowest> <highest> <sig> <v:c,v:c,...>" a
//                             line; builds each histogram, prints
//                             "<base64> <description>".
//   readlog <percentiles> <path>...
//                             reads each log with HistogramLogReader; prints a
//                             description (with tag, start, end) per interval,
//                             then "END start=<getStartTimeSec()>" per log.
//   writelog                  stdin: "LOG <path> <absolute|base|implicit>
//                             <start_ms> <base_ms>" starts a log; then
//                             "<tag|-> <start_ms> <end_ms> <lowest> <highest>
//                             <sig> <v:c,...>" lines are its intervals.

import java.io.BufferedReader;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;

import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;
import org.HdrHistogram.HistogramLogReader;
import org.HdrHistogram.HistogramLogWriter;

public class JavaPeer {

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, "UTF-8");
        switch (args[0]) {
            case "decode":
                decode(in, out, parsePercentiles(args[1]));
                break;
            case "encode":
                encode(in, out, parsePercentiles(args[1]));
                break;
            case "readlog":
                readLogs(Arrays.copyOfRange(args, 2, args.length), out, parsePercentiles(args[1]));
                break;
            case "writelog":
                writeLogs(in);
                break;
            default:
                throw new IllegalArgumentException("unknown command " + args[0]);
        }
        out.flush();
    }

    static double[] parsePercentiles(String list) {
        return Arrays.stream(list.split(",")).mapToDouble(Double::parseDouble).toArray();
    }

    /** What the tests compare, through the documented API only. */
    static String describe(Histogram h, double[] percentiles) {
        StringBuilder sb = new StringBuilder();
        sb.append("lowest=").append(h.getLowestDiscernibleValue());
        sb.append(" highest=").append(h.getHighestTrackableValue());
        sb.append(" sig=").append(h.getNumberOfSignificantValueDigits());
        sb.append(" total=").append(h.getTotalCount());
        sb.append(" min=").append(h.getMinValue());
        sb.append(" max=").append(h.getMaxValue());
        sb.append(" mean=").append(h.getMean());
        sb.append(" stdev=").append(h.getStdDeviation());
        sb.append(" pct=");
        for (int i = 0; i < percentiles.length; i++) {
            sb.append(i == 0 ? "" : ",").append(h.getValueAtPercentile(percentiles[i]));
        }
        // getValueIteratedTo() is the bucket's highest equivalent value.
        sb.append(" buckets=");
        boolean first = true;
        for (HistogramIterationValue v : h.recordedValues()) {
            sb.append(first ? "" : ",").append(v.getValueIteratedTo()).append(':')
              .append(v.getCountAtValueIteratedTo());
            first = false;
        }
        return sb.toString();
    }

    static String describeInterval(Histogram h, double[] percentiles) {
        String tag = h.getTag() == null ? "" : " tag=" + h.getTag();
        return "start=" + h.getStartTimeStamp() + " end=" + h.getEndTimeStamp() + tag
            + " " + describe(h, percentiles);
    }

    static String error(Throwable e) {
        return "ERROR " + e.toString().replace('\n', ' ');
    }

    static void decode(BufferedReader in, PrintStream out, double[] percentiles) throws Exception {
        for (String line; (line = in.readLine()) != null; ) {
            try {
                ByteBuffer buffer = ByteBuffer.wrap(Base64.getDecoder().decode(line.trim()));
                out.println(describe(Histogram.decodeFromCompressedByteBuffer(buffer, 0), percentiles));
            } catch (Exception e) {
                out.println(error(e));
            }
        }
    }

    /** "<lowest> <highest> <sig> <v:c,...>" fields from index 'at' on. */
    static Histogram build(String[] f, int at) {
        Histogram h = new Histogram(Long.parseLong(f[at]), Long.parseLong(f[at + 1]),
                                    Integer.parseInt(f[at + 2]));
        if (f.length > at + 3 && !f[at + 3].isEmpty()) {
            for (String pair : f[at + 3].split(",")) {
                String[] vc = pair.split(":");
                h.recordValueWithCount(Long.parseLong(vc[0]), Long.parseLong(vc[1]));
            }
        }
        return h;
    }

    static void encode(BufferedReader in, PrintStream out, double[] percentiles) throws Exception {
        for (String line; (line = in.readLine()) != null; ) {
            try {
                Histogram h = build(line.trim().split(" ", -1), 0);
                ByteBuffer buffer = ByteBuffer.allocate(h.getNeededByteBufferCapacity());
                int n = h.encodeIntoCompressedByteBuffer(buffer);
                String encoded = Base64.getEncoder().encodeToString(Arrays.copyOf(buffer.array(), n));
                out.println(encoded + " " + describe(h, percentiles));
            } catch (Exception e) {
                out.println(error(e));
            }
        }
    }

    static void readLogs(String[] paths, PrintStream out, double[] percentiles) {
        for (String path : paths) {
            try (HistogramLogReader reader = new HistogramLogReader(path)) {
                for (EncodableHistogram e; (e = reader.nextIntervalHistogram()) != null; ) {
                    out.println(describeInterval((Histogram) e, percentiles));
                }
                out.println("END start=" + reader.getStartTimeSec());
            } catch (Exception e) {
                out.println(error(e));
                out.println("END");
            }
        }
    }

    static void writeLogs(BufferedReader in) throws Exception {
        HistogramLogWriter writer = null;
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split(" ", -1);
            if (f[0].equals("LOG")) {
                if (writer != null) {
                    writer.close();
                }
                writer = new HistogramLogWriter(f[1]);
                long startMs = Long.parseLong(f[3]);
                long baseMs = Long.parseLong(f[4]);
                writer.outputComment("[Logged with JavaPeer]");
                writer.outputLogFormatVersion();
                writer.outputStartTime(startMs);
                // "base" and "implicit" write timestamps relative to baseMs;
                // only "base" says so in a #[BaseTime:] line.
                if (!f[2].equals("absolute")) {
                    writer.setBaseTime(baseMs);
                }
                if (f[2].equals("base")) {
                    writer.outputBaseTime(baseMs);
                }
                writer.outputLegend();
                continue;
            }
            Histogram h = build(f, 3);
            h.setTag(f[0].equals("-") ? null : f[0]);
            h.setStartTimeStamp(Long.parseLong(f[1]));
            h.setEndTimeStamp(Long.parseLong(f[2]));
            writer.outputIntervalHistogram(h);
        }
        if (writer != null) {
            writer.close();
        }
    }
}
