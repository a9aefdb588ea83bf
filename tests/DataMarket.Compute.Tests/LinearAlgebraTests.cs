namespace DataMarket.Compute.Tests;

public class factorisations_reconstruct_their_input
{
    private static double[] RandomSymmetricPositiveDefinite(int n, ulong seed)
    {
        var random = new SeededRandom(seed);
        var g = new double[n * n];
        random.FillNormal<double>(g, 0, 1);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = i == j ? n : 0; // G Gᵀ + n I is well conditioned
                for (int p = 0; p < n; p++)
                {
                    sum += g[i * n + p] * g[j * n + p];
                }
                a[i * n + j] = sum;
            }
        }
        return a;
    }

    [Theory]
    [InlineData("managed", 1)]
    [InlineData("managed", 7)]
    [InlineData("managed", 33)]
    [InlineData("openblas", 1)]
    [InlineData("openblas", 7)]
    [InlineData("openblas", 33)]
    public void cholesky_factor_times_its_transpose_is_the_matrix_and_solve_inverts(string backendName, int n)
    {
        var backend = Backends.Get(backendName);
        if (backend is null)
        {
            return;
        }
        var a = RandomSymmetricPositiveDefinite(n, 11);
        var l = (double[])a.Clone();
        backend.CholeskyFactor(l, n);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (j > i)
                {
                    Assert.Equal(0, l[i * n + j]);
                }
                double sum = 0;
                for (int p = 0; p < n; p++)
                {
                    sum += l[i * n + p] * l[j * n + p];
                }
                Assert.Equal(a[i * n + j], sum, 1e-9 * n);
            }
        }
        const int rhs = 3;
        var x = new double[n * rhs];
        new SeededRandom(5).FillNormal<double>(x, 0, 1);
        var b = new double[n * rhs];
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < rhs; c++)
            {
                for (int p = 0; p < n; p++)
                {
                    b[i * rhs + c] += a[i * n + p] * x[p * rhs + c];
                }
            }
        }
        backend.CholeskySolve(l, n, b, rhs);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(x[i], b[i], 1e-9);
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void cholesky_rejects_an_indefinite_matrix(string backendName)
    {
        var backend = Backends.Get(backendName);
        if (backend is null)
        {
            return;
        }
        var exception = Assert.Throws<ArgumentException>(() => backend.CholeskyFactor(new double[] { 1, 2, 2, 1 }, 2));
        Assert.Contains("positive definite", exception.Message);
    }

    [Theory]
    [InlineData("managed", 1)]
    [InlineData("managed", 8)]
    [InlineData("managed", 33)]
    [InlineData("openblas", 1)]
    [InlineData("openblas", 8)]
    [InlineData("openblas", 33)]
    public void eigendecomposition_reconstructs_and_is_orthonormal(string backendName, int n)
    {
        var backend = Backends.Get(backendName);
        if (backend is null)
        {
            return;
        }
        var random = new SeededRandom(99);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                a[i * n + j] = a[j * n + i] = random.NextNormal();
            }
        }
        var w = new double[n];
        var v = new double[n * n];
        backend.SymmetricEigen(a, n, w, v);
        for (int j = 1; j < n; j++)
        {
            Assert.True(w[j - 1] <= w[j], "eigenvalues ascend");
        }
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double reconstructed = 0, gram = 0;
                for (int p = 0; p < n; p++)
                {
                    reconstructed += v[i * n + p] * w[p] * v[j * n + p];
                    gram += v[p * n + i] * v[p * n + j];
                }
                Assert.Equal(a[i * n + j], reconstructed, 1e-10);
                Assert.Equal(i == j ? 1.0 : 0.0, gram, 1e-10);
            }
        }
    }
}

public class row_operations
{
    [Fact]
    public void softmax_rows_sum_to_one_and_survive_large_logits()
    {
        float[] logits = [1000f, 1001f, 1002f, -5f, 0f, 5f];
        var probabilities = new float[6];
        var log = new float[6];
        ComputeBackends.Managed.SoftmaxRows(logits, probabilities, 3);
        ComputeBackends.Managed.LogSoftmaxRows(logits, log, 3);
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(1f, probabilities[r * 3] + probabilities[r * 3 + 1] + probabilities[r * 3 + 2], 1e-6f);
            for (int j = 0; j < 3; j++)
            {
                Assert.Equal(Math.Log(probabilities[r * 3 + j]), log[r * 3 + j], 1e-5);
            }
        }
        double z = Math.Exp(-2) + Math.Exp(-1) + 1;
        Assert.Equal(1 / z, probabilities[2], 1e-6);
    }

    [Fact]
    public void top_k_returns_largest_first_with_ties_to_the_lower_index()
    {
        float[] rows = [3f, 1f, 3f, 2f, /* row 2 */ -1f, 5f, 0f, 5f];
        var indices = new int[4];
        var values = new float[4];
        RowOps.TopKRows(rows, 4, 2, indices, values);
        Assert.Equal([0, 2, 1, 3], indices);
        Assert.Equal([3f, 3f, 5f, 5f], values);
    }

    [Fact]
    public void argsort_is_stable_in_both_directions()
    {
        float[] row = [2f, 1f, 2f, 0f, 1f];
        var ascending = new int[5];
        var descending = new int[5];
        RowOps.ArgsortRows(row, 5, ascending);
        RowOps.ArgsortRows(row, 5, descending, descending: true);
        Assert.Equal([3, 1, 4, 0, 2], ascending);
        Assert.Equal([0, 2, 1, 4, 3], descending);
    }

    [Fact]
    public void seeded_random_is_reproducible_and_roughly_standard_normal()
    {
        var first = new float[10_000];
        var second = new float[10_000];
        new SeededRandom(1).FillNormal(first, 0f, 1f);
        new SeededRandom(1).FillNormal(second, 0f, 1f);
        Assert.Equal(first, second);
        double mean = first.Average(), variance = first.Select(x => (x - mean) * (x - mean)).Average();
        Assert.InRange(mean, -0.05, 0.05);
        Assert.InRange(variance, 0.95, 1.05);
    }
}

public class tensor_views
{
    [Fact]
    public void reshape_slice_and_select_share_storage()
    {
        using var t = Tensor.FromSpan([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 3, 4);
        var rows = t.Slice(1, 2);
        Assert.Same(t.Storage, rows.Storage);
        Assert.Equal(4f, rows[0, 0]);
        rows[1, 3] = 99f;
        Assert.Equal(99f, t[2, 3]);
        Assert.Equal([4f, 5f, 6f, 7f], t.Select(1).ToArray());
        var flat = t.Reshape(-1);
        Assert.Equal(12, flat.Shape[0]);
        var transposed = t.Transposed();
        Assert.Equal(4f, transposed[0, 1]);
        Assert.Throws<InvalidOperationException>(() => transposed.AsSpan());
        Assert.Throws<InvalidOperationException>(() => transposed.Reshape(12));
        using var copy = transposed.ToContiguous();
        Assert.Equal([0f, 4f, 8f], copy.Select(0).ToArray());
    }

    [Fact]
    public void disposed_storage_is_not_readable()
    {
        var t = Tensor.Zeros(2, 2);
        var view = t.Reshape(4);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => view.AsSpan());
    }

    [Fact]
    public void backend_selection_honours_the_requested_kind()
    {
        Assert.Equal("managed", ComputeBackends.Select(BackendKind.Managed).Backend.Name);
        Assert.Contains("--device gpu", Assert.Throws<ArgumentException>(() => ComputeBackends.Parse("cuda")).Message);
        Assert.Throws<ArgumentException>(() => ComputeBackends.Parse("tpu"));
        Assert.Equal(BackendKind.OpenBlas, ComputeBackends.Parse(" OpenBLAS "));
    }
}
