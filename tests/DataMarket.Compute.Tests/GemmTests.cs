namespace DataMarket.Compute.Tests;

public class gemm_against_a_float64_reference
{
    private static double[] Reference(Transpose ta, Transpose tb, int m, int n, int k, double alpha, float[] a, int lda,
        float[] b, int ldb, double beta, float[] c, int ldc)
    {
        var result = new double[Math.Max(1, (m - 1) * ldc + n)];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    double aip = ta == Transpose.None ? a[i * lda + p] : a[p * lda + i];
                    double bpj = tb == Transpose.None ? b[p * ldb + j] : b[j * ldb + p];
                    sum += aip * bpj;
                }
                result[i * ldc + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * ldc + j]);
            }
        }
        return result;
    }

    private static float[] RandomArray(SeededRandom random, int length)
    {
        var values = new float[length];
        random.FillUniform<float>(values, -1f, 1f);
        return values;
    }

    public static TheoryData<string, int, int, int> Cases()
    {
        var data = new TheoryData<string, int, int, int>();
        foreach (var backend in new[] { "managed-Scalar", "managed-Vector256", "managed-Vector512", "openblas" })
        {
            foreach (int size in new[] { 0, 1, 7, 33, 257 })
            {
                data.Add(backend, size, size, size);
            }
            data.Add(backend, 5, 0, 3);
            data.Add(backend, 3, 4, 0);
            data.Add(backend, 31, 45, 300); // depth beyond one packing block, edges in both directions
            data.Add(backend, 130, 70, 9);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void every_transpose_combination_matches(string backendName, int m, int n, int k)
    {
        var backend = Backends.Get(backendName);
        if (backend is null)
        {
            return;
        }
        var random = new SeededRandom(42);
        foreach (var ta in new[] { Transpose.None, Transpose.Transposed })
        {
            foreach (var tb in new[] { Transpose.None, Transpose.Transposed })
            {
                // Large sizes run one mixed alpha/beta case to keep the suite fast; small sizes run all three.
                var scalings = m > 100 ? new[] { (0.5f, -1.25f) } : new[] { (1f, 0f), (0.5f, -1.25f), (-2f, 1f) };
                foreach (var (alpha, beta) in scalings)
                {
                    // Leading dimensions larger than the logical width check that strides are honoured.
                    int lda = (ta == Transpose.None ? k : m) + 3, ldb = (tb == Transpose.None ? n : k) + 1, ldc = n + 2;
                    int aRows = ta == Transpose.None ? m : k, bRows = tb == Transpose.None ? k : n;
                    var a = RandomArray(random, aRows * lda);
                    var b = RandomArray(random, bRows * ldb);
                    var c = RandomArray(random, Math.Max(1, m * ldc));
                    if (beta == 0f && c.Length > 0)
                    {
                        c[0] = float.NaN; // beta = 0 must not read C
                    }
                    var expected = Reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    var padding = (float[])c.Clone();
                    backend.Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < ldc; j++)
                        {
                            int index = i * ldc + j;
                            if (j >= n)
                            {
                                Assert.Equal(padding[index], c[index]); // columns past n are never written
                                continue;
                            }
                            double tolerance = 1e-5 * (k + 1) * (1 + Math.Abs(expected[index]));
                            Assert.True(Math.Abs(c[index] - expected[index]) <= tolerance,
                                $"{backend.Name} {ta}/{tb} alpha={alpha} beta={beta} C[{i},{j}]={c[index]} expected {expected[index]}");
                        }
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void double_gemm_matches_reference(string backendName)
    {
        var backend = Backends.Get(backendName);
        if (backend is null)
        {
            return;
        }
        var random = new SeededRandom(7);
        foreach (var ta in new[] { Transpose.None, Transpose.Transposed })
        {
            foreach (var tb in new[] { Transpose.None, Transpose.Transposed })
            {
                const int m = 9, n = 13, k = 17;
                var a = new double[m * k];
                var b = new double[k * n];
                var c = new double[m * n];
                random.FillNormal<double>(a, 0, 1);
                random.FillNormal<double>(b, 0, 1);
                random.FillNormal<double>(c, 0, 1);
                var expected = new double[m * n];
                for (int i = 0; i < m; i++)
                {
                    for (int j = 0; j < n; j++)
                    {
                        double sum = 0;
                        for (int p = 0; p < k; p++)
                        {
                            sum += (ta == Transpose.None ? a[i * k + p] : a[p * m + i]) * (tb == Transpose.None ? b[p * n + j] : b[j * k + p]);
                        }
                        expected[i * n + j] = 1.5 * sum + 0.5 * c[i * n + j];
                    }
                }
                backend.Gemm(ta, tb, m, n, k, 1.5, a, ta == Transpose.None ? k : m, b, tb == Transpose.None ? n : k, 0.5, c, n);
                for (int i = 0; i < c.Length; i++)
                {
                    Assert.Equal(expected[i], c[i], 1e-12);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void batched_gemm_runs_each_batch_independently(string backendName)
    {
        var backend = Backends.Get(backendName);
        if (backend is null)
        {
            return;
        }
        var random = new SeededRandom(3);
        const int batches = 3, m = 5, n = 6, k = 7;
        var a = RandomArray(random, batches * m * k);
        var b = RandomArray(random, batches * k * n);
        var c = new float[batches * m * n];
        backend.GemmBatched(Transpose.None, Transpose.None, m, n, k, 1f, a, k, m * k, b, n, k * n, 0f, c, n, m * n, batches);
        for (int batch = 0; batch < batches; batch++)
        {
            var expected = Reference(Transpose.None, Transpose.None, m, n, k, 1, a[(batch * m * k)..], k, b[(batch * k * n)..], n, 0, new float[m * n], n);
            for (int i = 0; i < m * n; i++)
            {
                Assert.Equal(expected[i], c[batch * m * n + i], 1e-5);
            }
        }
    }

    [Fact]
    public void matmul_reads_a_transposed_view_without_copying()
    {
        var backend = ComputeBackends.Managed;
        using var a = Tensor.FromSpan([1, 2, 3, 4, 5, 6], 2, 3); // A is 2x3, Aᵀ is 3x2
        using var b = Tensor.FromSpan([1, 0, 0, 1], 2, 2);
        using var c = Tensor.Zeros(3, 2);
        var view = a.Transposed();
        Assert.False(view.IsContiguous);
        Assert.Same(a.Storage, view.Storage);
        backend.MatMul(view, b, c);
        Assert.Equal([1f, 4f, 2f, 5f, 3f, 6f], c.ToArray());
    }

    [Fact]
    public void gemm_rejects_a_too_short_operand()
    {
        var backend = ComputeBackends.Managed;
        Assert.Throws<ArgumentException>(() => backend.Gemm(Transpose.None, Transpose.None, 2, 2, 2, 1f, new float[3], 2, new float[4], 2, 0f, new float[4], 2));
        Assert.Throws<ArgumentException>(() => backend.Gemm(Transpose.None, Transpose.None, 2, 2, 2, 1f, new float[4], 1, new float[4], 2, 0f, new float[4], 2));
    }
}
