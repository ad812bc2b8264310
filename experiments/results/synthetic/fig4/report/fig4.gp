set terminal pngcairo size 1150,600 enhanced font 'sans,11'
set output 'experiments/results/synthetic/fig4/report/fig4.png'
set title 'Zero-shot top-1 vs rate, synthetic, 200 held-out classes' noenhanced
set xlabel 'rate (bits per dimension, as coded)' noenhanced
set ylabel 'zero-shot top-1 accuracy (%)' noenhanced
set grid
set key outside right top box noenhanced
set yrange [40:95]
set offsets graph 0.03, graph 0.03, 0, 0
plot 'experiments/results/synthetic/fig4/report/fig4.dat' index 0 using 1:2 with linespoints lw 2 pt 5 title 'PQVAE-shared', \
     'experiments/results/synthetic/fig4/report/fig4.dat' index 1 using 1:2 with linespoints lw 2 pt 6 title 'VQ-VAE k-means PQ', \
     'experiments/results/synthetic/fig4/report/fig4.dat' index 2 using 1:2 with linespoints lw 2 pt 7 title 'Learned SQ', \
     'experiments/results/synthetic/fig4/report/fig4.dat' index 3 using 1:2 with linespoints lw 2 pt 8 title 'FAISS PQ', \
     'experiments/results/synthetic/fig4/report/fig4.dat' index 4 using 1:2 with linespoints lw 2 pt 9 title 'FAISS OPQ+PQ', \
     'experiments/results/synthetic/fig4/report/fig4.dat' index 5 using 1:2 with linespoints lw 2 pt 10 title 'FAISS RQ', \
     83.34 with lines dt 2 lw 2 lc rgb 'black' title 'synthetic upper bound (uncompressed) 83.34%'
